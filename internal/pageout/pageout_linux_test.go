package pageout

import (
	"crypto/sha256"
	"os"
	"testing"
)

// TestReleaseDropsResidentBinaryPages runs Release in the test binary
// itself: the executable's resident bytes must drop, and code and read-only
// data must keep working afterwards (they fault back in).
func TestReleaseDropsResidentBinaryPages(t *testing.T) {
	sum := sha256.Sum256([]byte("before")) // touch some code first
	before, after, err := Release()
	if err != nil {
		t.Fatalf("Release: %v", err)
	}
	if before == 0 {
		t.Fatal("found no resident pages of the executable: the smaps parsing missed its mappings")
	}
	if after >= before {
		t.Errorf("resident bytes of the executable %d → %d, want fewer", before, after)
	}
	t.Logf("executable resident: %d KiB → %d KiB", before>>10, after>>10)
	if again := sha256.Sum256([]byte("before")); again != sum {
		t.Fatal("code gave a different result after Release")
	}
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		t.Fatal(err)
	}
}

func TestParseSmaps(t *testing.T) {
	const smaps = `00400000-00cd4000 r-xp 00000000 fe:00 10142817                           /usr/bin/outrigger
Size:               9040 kB
Rss:                3152 kB
Anonymous:             0 kB
00cd4000-0171d000 r--p 008d4000 fe:00 10142817                           /usr/bin/outrigger
Rss:                6132 kB
Anonymous:             8 kB
0171d000-017bd000 rw-p 0131d000 fe:00 10142817                           /usr/bin/outrigger
Rss:                 640 kB
Anonymous:           100 kB
c000000000-c004000000 rw-p 00000000 00:00 0
Rss:                4000 kB
7f0000000000-7f0000001000 r--p 00000000 fe:00 1                          /usr/bin/outrigger (deleted)
Rss:                   4 kB
garbage line without colon
zz-yy r-xp 0 0 0 /usr/bin/outrigger
Rss: notanumber kB
`
	got := parseSmaps([]byte(smaps), "/usr/bin/outrigger")
	want := []mapping{
		{start: 0x400000, end: 0xcd4000, rss: 3152 << 10},
		{start: 0xcd4000, end: 0x171d000, rss: 6132 << 10, anon: 8 << 10},
		{start: 0x171d000, end: 0x17bd000, writable: true, rss: 640 << 10, anon: 100 << 10},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mappings %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func FuzzParseSmaps(f *testing.F) {
	f.Add([]byte("00400000-00cd4000 r-xp 00000000 fe:00 1 /x\nRss: 4 kB\nAnonymous: 0 kB\n"), "/x")
	f.Fuzz(func(t *testing.T, b []byte, path string) {
		for _, m := range parseSmaps(b, path) {
			if m.end <= m.start {
				t.Fatalf("mapping with end %x <= start %x", m.end, m.start)
			}
		}
	})
}
