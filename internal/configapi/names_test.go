package configapi

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "app", true},
		{"all classes", "A-z_0.9", true},
		{"max length", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
		{"empty", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"leading dot", ".env", false},
		{"inner dots ok", "a..b", true},
		{"slash", "a/b", false},
		{"backslash", `a\b`, false},
		{"NUL", "a\x00b", false},
		{"space", "a b", false},
		{"newline", "a\n", false},
		{"unicode", "été", false},
		{"percent", "a%2Fb", false},
		{"colon", "a:b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidName(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"app", "..", "a/b", "a\x00", strings.Repeat("x", 129), ".x", "A-z_0.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) != nil {
			return
		}
		if s == "" || len(s) > MaxNameLen || s[0] == '.' || strings.ContainsAny(s, "/\\\x00 %") {
			t.Fatalf("ValidName accepted %q", s)
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				t.Fatalf("ValidName accepted %q with %q", s, r)
			}
		}
	})
}

func TestParseETags(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		present bool
		wantErr bool
		any     bool
		vers    []int64
	}{
		{"empty", "", false, false, false, nil},
		{"star", "*", true, false, true, nil},
		{"strong", `"7"`, true, false, false, []int64{7}},
		{"weak", `W/"7"`, true, false, false, []int64{7}},
		{"bare", `7`, true, false, false, []int64{7}},
		{"list", `"1", W/"2" ,"3"`, true, false, false, []int64{1, 2, 3}},
		{"foreign tag ignored", `"abc", "4"`, true, false, false, []int64{4}},
		{"comma inside quotes", `"a,b", "5"`, true, false, false, []int64{5}},
		{"negative ignored", `"-1"`, true, false, false, nil},
		{"unterminated", `"7`, true, true, false, nil},
		{"space inside bare", `7 8`, true, true, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, present, err := parseETags(tc.in)
			if present != tc.present || (err != nil) != tc.wantErr {
				t.Fatalf("parseETags(%q) = %+v, %v, %v", tc.in, l, present, err)
			}
			if err != nil {
				return
			}
			if l.any != tc.any || len(l.versions) != len(tc.vers) {
				t.Fatalf("parseETags(%q) = %+v, want any=%v %v", tc.in, l, tc.any, tc.vers)
			}
			for i := range tc.vers {
				if l.versions[i] != tc.vers[i] {
					t.Fatalf("parseETags(%q) = %+v, want %v", tc.in, l, tc.vers)
				}
			}
		})
	}
}

func FuzzParseETags(f *testing.F) {
	for _, s := range []string{`"1"`, `W/"2", "3"`, `*`, `"`, `,,,`, `"a,b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, _, err := parseETags(s)
		if err != nil {
			return
		}
		for _, v := range l.versions {
			if v < 0 {
				t.Fatalf("negative version %d from %q", v, s)
			}
			if !l.matches(v) {
				t.Fatalf("list %+v does not match its own version %d", l, v)
			}
		}
	})
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"512KiB", 512 << 10, true},
		{"2M", 2 << 20, true},
		{"10B", 10, true},
		{"-1", 0, false},
		{"lots", 0, false},
		{"99999999GiB", 0, false},
	}
	for _, tc := range tests {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
