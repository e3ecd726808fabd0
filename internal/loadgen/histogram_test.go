package loadgen

import (
	"math"
	"sort"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	cases := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one sample", []time.Duration{7 * time.Millisecond}, 0.99, 7 * time.Millisecond},
		{"exact small", []time.Duration{1 * time.Microsecond, 2 * time.Microsecond, 3 * time.Microsecond}, 0.5, 2 * time.Microsecond},
		{"max is exact", []time.Duration{time.Millisecond, 3*time.Second + 7*time.Microsecond}, 1, 3*time.Second + 7*time.Microsecond},
		{"negative counts as zero", []time.Duration{-time.Second}, 0.5, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, s := range tc.samples {
				h.Record(s)
			}
			if got := h.Quantile(tc.q); got != tc.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func TestHistogramRelativeError(t *testing.T) {
	var h Histogram
	var all []time.Duration
	// A spread from 10µs to ~10s, deterministic.
	for i := 0; i < 10000; i++ {
		d := time.Duration(10*math.Pow(1.0014, float64(i))) * time.Microsecond
		h.Record(d)
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got) > float64(exact)*1.07+float64(time.Microsecond) {
			t.Errorf("q%v: got %v, exact %v: outside [exact, exact*1.07]", q, got, exact)
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(time.Second)
	b.Record(2 * time.Second)
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != 2*time.Second {
		t.Fatalf("count %d max %v after merge", a.Count(), a.Max())
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<16; us++ {
		b := bucketOf(us)
		if b != prev && b != prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: not contiguous", us, b, prev)
		}
		if us > upperBound(b) {
			t.Fatalf("value %d above its bucket %d bound %d", us, b, upperBound(b))
		}
		prev = b
	}
}

// FuzzBucket checks the bucket mapping for any value: the value lies within
// its bucket, whose width is at most 1/16 of its lower edge.
func FuzzBucket(f *testing.F) {
	for _, v := range []uint64{0, 1, 31, 32, 33, 63, 64, 1000, 1 << 40, math.MaxUint64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, us uint64) {
		b := bucketOf(us)
		if b < 0 || b >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", us, b)
		}
		if b == histBuckets-1 {
			return // clamped
		}
		hi := upperBound(b)
		lo := uint64(0)
		if b > 0 {
			lo = upperBound(b-1) + 1
		}
		if us < lo || us > hi {
			t.Fatalf("value %d outside its bucket %d [%d, %d]", us, b, lo, hi)
		}
		if lo >= exactBelow && hi-lo+1 > lo/subBuckets {
			t.Fatalf("bucket %d [%d, %d] wider than 1/16 of %d", b, lo, hi, lo)
		}
	})
}
