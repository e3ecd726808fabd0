//go:build race

package format

// raceEnabled shrinks the heaviest tests under the race detector, which
// slows the parsers tenfold.
const raceEnabled = true
