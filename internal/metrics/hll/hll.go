// Package hll counts distinct 64-bit hashes in fixed memory with a
// HyperLogLog sketch, so the data plane can report how many distinct users
// a build served (and how many of them saw an error) without keeping a set
// of users.
//
// A Sketch has 2^14 six-bit registers (16 KiB) and a relative standard error
// of about 1.04/√16384 ≈ 0.8 % at every cardinality; small cardinalities are
// almost exact. Cardinality is estimated with Ertl's improved raw estimator
// ("New cardinality estimation algorithms for HyperLogLog sketches", 2017),
// which needs no empirical bias tables and stays unbiased from 0 to far
// beyond 10^9. Sketches merge by taking the register-wise maximum, so the
// union of several builds, bins or gateway replicas is exact to the same
// error as one sketch fed everything.
package hll

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
)

const (
	// Precision is log2 of the number of registers.
	Precision = 14
	// Registers is the number of registers of every sketch.
	Registers = 1 << Precision
	// q is the number of hash bits left for the rank after the index bits.
	q = 64 - Precision
	// perWord registers are packed into one atomic 32-bit word.
	perWord = 4
	words   = Registers / perWord
)

// Sketch is a HyperLogLog sketch that many goroutines may Add to at once
// without locks. The zero value is an empty sketch ready to use. A Sketch
// must not be copied after first use (it holds atomics); use Clone or
// MarshalBinary.
type Sketch struct {
	regs [words]atomic.Uint32
}

// New returns an empty sketch.
func New() *Sketch { return new(Sketch) }

// mix is the splitmix64 finalizer. Callers pass hashes of user keys, but
// nothing promises those hashes are well mixed in every bit (an FNV hash of
// short keys is not), and the estimate depends on it, so every input is
// mixed again. It is a bijection, so distinct inputs stay distinct.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Add records the hash h. Safe for concurrent use and never allocates. Once
// the register that h falls in has reached h's rank — the common case after
// warm-up — Add is one atomic load and writes nothing, so concurrent Adds do
// not contend on cache lines.
func (s *Sketch) Add(h uint64) {
	x := mix(h)
	idx := x >> q
	// Rank: 1 + leading zeros of the remaining q bits; at most q+1.
	rank := uint32(bits.LeadingZeros64(x<<Precision|1<<(Precision-1)) + 1)
	w := &s.regs[idx/perWord]
	shift := (idx % perWord) * 8
	for {
		old := w.Load()
		if (old>>shift)&0xff >= rank {
			return
		}
		if w.CompareAndSwap(old, old&^(0xff<<shift)|rank<<shift) {
			return
		}
	}
}

// register returns register i.
func (s *Sketch) register(i int) uint8 {
	return uint8(s.regs[i/perWord].Load() >> ((i % perWord) * 8))
}

// Estimate returns the estimated number of distinct hashes added. It reads
// the registers one by one, so under concurrent Adds it returns a value
// between the counts before and after those Adds. About 20 µs; not for the
// request path.
func (s *Sketch) Estimate() float64 {
	var c [q + 2]int // c[k]: registers holding k
	for i := range s.regs {
		v := s.regs[i].Load()
		for j := 0; j < perWord; j++ {
			c[(v>>(8*j))&0xff]++
		}
	}
	return estimate(&c)
}

// estimate is Ertl's improved raw estimator over the register histogram c.
func estimate(c *[q + 2]int) float64 {
	const m = float64(Registers)
	if c[0] == Registers {
		return 0
	}
	z := m * tau(1-float64(c[q+1])/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * sigma(float64(c[0])/m)
	const alphaInf = 0.5 / math.Ln2
	return alphaInf * m * m / z
}

// sigma is σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k-1), the correction for empty
// registers (it diverges at x = 1, an empty sketch, handled by the caller).
func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y := 1.0
	z := x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

// tau is τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))²·2^−k)/3, the correction for
// saturated registers.
func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y := 1.0
	z := 1 - x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// Merge folds o into s, so s estimates the union of both. Safe while other
// goroutines Add to either sketch; o is not changed.
func (s *Sketch) Merge(o *Sketch) {
	for i := range s.regs {
		ov := o.regs[i].Load()
		if ov == 0 {
			continue
		}
		for {
			old := s.regs[i].Load()
			nv := maxBytes(old, ov)
			if nv == old || s.regs[i].CompareAndSwap(old, nv) {
				break
			}
		}
	}
}

// maxBytes returns the byte-wise maximum of two packed register words.
func maxBytes(a, b uint32) uint32 {
	var r uint32
	for j := uint32(0); j < 32; j += 8 {
		r |= max((a>>j)&0xff, (b>>j)&0xff) << j
	}
	return r
}

// Reset empties s. Adds that run concurrently with Reset may survive it.
func (s *Sketch) Reset() {
	for i := range s.regs {
		s.regs[i].Store(0)
	}
}

// Clone returns an independent copy of s.
func (s *Sketch) Clone() *Sketch {
	c := new(Sketch)
	for i := range s.regs {
		c.regs[i].Store(s.regs[i].Load())
	}
	return c
}

// encodingVersion is the first byte of MarshalBinary's output.
const encodingVersion = 1

// MarshalBinary encodes s as one version byte, one precision byte and one
// byte per register, so a replica can publish its sketches for the leader
// to merge.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	b := make([]byte, 2+Registers)
	b[0], b[1] = encodingVersion, Precision
	for i := 0; i < Registers; i++ {
		b[2+i] = s.register(i)
	}
	return b, nil
}

// ErrEncoding reports bytes that MarshalBinary did not produce.
var ErrEncoding = errors.New("hll: bad encoding")

// UnmarshalBinary replaces s's registers with those encoded in b by
// MarshalBinary. On error s is unchanged.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	if len(b) != 2+Registers {
		return fmt.Errorf("%w: length %d, want %d", ErrEncoding, len(b), 2+Registers)
	}
	if b[0] != encodingVersion || b[1] != Precision {
		return fmt.Errorf("%w: version %d precision %d, want %d and %d", ErrEncoding, b[0], b[1], encodingVersion, Precision)
	}
	for i, r := range b[2:] {
		if r > q+1 {
			return fmt.Errorf("%w: register %d holds %d, more than %d", ErrEncoding, i, r, q+1)
		}
	}
	for i := range s.regs {
		r := b[2+i*perWord:]
		s.regs[i].Store(uint32(r[0]) | uint32(r[1])<<8 | uint32(r[2])<<16 | uint32(r[3])<<24)
	}
	return nil
}
