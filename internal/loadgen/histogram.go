package loadgen

import (
	"math/bits"
	"time"
)

// Histogram records latencies in fixed log-linear buckets, in the spirit of
// HdrHistogram: values below 32µs are exact, larger ones fall in one of 16
// sub-buckets per power of two, so a reported percentile is at most 1/16
// (6.25%) above the true value. Memory is fixed (histBuckets counters)
// however many samples are recorded. The zero value is ready to use; a
// Histogram is not safe for concurrent use (each worker keeps its own and
// they are merged at the end).
type Histogram struct {
	counts [histBuckets]int64
	n      int64
	max    time.Duration
}

const (
	subBits     = 4
	subBuckets  = 1 << subBits   // 16 sub-buckets per power of two
	exactBelow  = 2 * subBuckets // values below 32µs have a bucket each
	maxExponent = 40             // 2^44µs ≈ 203 days: anything larger is clamped
	histBuckets = exactBelow + maxExponent*subBuckets
)

// bucketOf maps a latency in microseconds to its bucket index.
func bucketOf(us uint64) int {
	if us < exactBelow {
		return int(us)
	}
	e := bits.Len64(us) - (subBits + 1) // us>>e is in [16, 32)
	if e > maxExponent {
		return histBuckets - 1
	}
	return exactBelow + (e-1)*subBuckets + int(us>>uint(e)) - subBuckets
}

// upperBound is the largest value (µs) that falls in bucket i.
func upperBound(i int) uint64 {
	if i < exactBelow {
		return uint64(i)
	}
	e := uint((i-exactBelow)/subBuckets + 1)
	sub := uint64((i-exactBelow)%subBuckets + subBuckets)
	return (sub+1)<<e - 1
}

// Record adds one latency. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	if o.max > h.max {
		h.max = o.max
	}
}

// Count is the number of recorded samples.
func (h *Histogram) Count() int64 { return h.n }

// Max is the largest recorded latency, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the latency below which a fraction q (0..1) of the samples
// fall: the upper bound of the bucket holding that rank, never more than Max.
// It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q < 0 {
		q = 0
	}
	if q > 1 {
		q = 1
	}
	rank := int64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(upperBound(i)) * time.Microsecond
			if d > h.max {
				d = h.max
			}
			return d
		}
	}
	return h.max
}
