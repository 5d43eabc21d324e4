// Package cohort decides, for one request, whether its user belongs to the
// canary: the user's key, their bucket, the canary window, segments and
// overrides. Everything here is a pure function of the request and an
// immutable Rules value, so every gateway replica gives the same user the
// same answer without sharing any state.
package cohort

// Buckets is the size of the bucket space: a user's bucket is
// Hash(salt, key) mod Buckets, and 1 % of users is 100 buckets.
const Buckets = 10000

// Hash returns a 64-bit hash of the user key under a service's salt. It is
// stable across processes, versions and machines (FNV-1a followed by a
// splitmix64 finaliser for avalanche), because a user's bucket must never
// change while the salt does not. It does not allocate.
func Hash(salt, key string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h ^= uint64(salt[i])
		h *= prime
	}
	h ^= 0xff // separator: ("ab","c") and ("a","bc") differ
	h *= prime
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Bucket returns the user's fixed position in [0, Buckets).
func Bucket(salt, key string) uint32 { return uint32(Hash(salt, key) % Buckets) }

// Window is the range of buckets routed to the canary: Size buckets starting
// at Offset, wrapping around the end of the bucket space.
type Window struct {
	Offset uint32 // first bucket, < Buckets
	Size   uint32 // number of buckets, ≤ Buckets
}

// WindowFor returns the window of a canary at percent (0–100) starting at
// offset. Raising percent only adds buckets at the end; lowering only
// removes them, so users never flip back and forth.
func WindowFor(offset uint32, percent float64) Window {
	if percent <= 0 {
		return Window{Offset: offset % Buckets}
	}
	size := uint32(percent*Buckets/100 + 0.5)
	if size > Buckets {
		size = Buckets
	}
	return Window{Offset: offset % Buckets, Size: size}
}

// Contains reports whether bucket b is in the window.
func (w Window) Contains(b uint32) bool {
	return (b+Buckets-w.Offset)%Buckets < w.Size
}

// Share returns the fraction of the bucket space the window covers.
func (w Window) Share() float64 { return float64(w.Size) / Buckets }
