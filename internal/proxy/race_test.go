//go:build race

package proxy

// raceEnabled is true when the tests run under the race detector, which
// makes pushing a gigabyte through three HTTP hops take many minutes.
const raceEnabled = true
