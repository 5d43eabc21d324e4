//go:build race

package sim

// raceEnabled shrinks the short simulation under the race detector, which
// slows this pure arithmetic about tenfold.
const raceEnabled = true
