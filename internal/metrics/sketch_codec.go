package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/canaryd/canaryd/internal/latency"
)

// sketchEncoding is the version byte of MarshalBinary's format.
const sketchEncoding = 1

// MarshalBinary encodes s compactly for replicas to publish their bins: a
// version byte, then per bucket the index gap from the previous bucket and
// the count, as unsigned varints (a busy one-second bin: ~100 bytes).
func (s Sketch) MarshalBinary() ([]byte, error) {
	out := make([]byte, 1, 1+4*len(s))
	out[0] = sketchEncoding
	prev := -1
	for _, b := range s {
		if int(b.I) <= prev {
			return nil, fmt.Errorf("metrics: sketch buckets out of order at index %d", b.I)
		}
		out = binary.AppendUvarint(out, uint64(int(b.I)-prev))
		out = binary.AppendUvarint(out, b.N)
		prev = int(b.I)
	}
	return out, nil
}

// ErrSketchEncoding reports bytes that are not an encoded Sketch.
var ErrSketchEncoding = errors.New("metrics: not an encoded latency sketch")

// UnmarshalSketch decodes what Sketch.MarshalBinary wrote. Empty input is
// the empty sketch; anything malformed is an error wrapping
// ErrSketchEncoding, never a panic.
func UnmarshalSketch(b []byte) (Sketch, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != sketchEncoding {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrSketchEncoding, b[0], sketchEncoding)
	}
	var s Sketch
	prev := -1
	for p := 1; p < len(b); {
		gap, n := binary.Uvarint(b[p:])
		if n <= 0 || gap == 0 || gap > latency.NumBuckets {
			return nil, fmt.Errorf("%w: bad bucket index at byte %d", ErrSketchEncoding, p)
		}
		p += n
		cnt, n := binary.Uvarint(b[p:])
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad count at byte %d", ErrSketchEncoding, p)
		}
		p += n
		i := prev + int(gap)
		if i >= latency.NumBuckets {
			return nil, fmt.Errorf("%w: bucket %d beyond the layout's %d", ErrSketchEncoding, i, latency.NumBuckets)
		}
		s = append(s, BucketCount{I: uint16(i), N: cnt})
		prev = i
	}
	return s, nil
}

// MergeSketches returns the bucket-wise sum of sketches.
func MergeSketches(sketches ...Sketch) Sketch {
	var h latency.Histogram
	for _, s := range sketches {
		s.AddTo(&h)
	}
	return sketchOf(&h, nil)
}
