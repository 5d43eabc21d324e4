package judge

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// eventsEncoding is the version byte of EncodeEvents' format.
const eventsEncoding = 1

// ErrEventsEncoding reports bytes that are not encoded first events.
var ErrEventsEncoding = errors.New("judge: not encoded first events")

// EncodeEvents encodes first events for a replica to publish: a version
// byte, then 9 bytes an event (the user's hash, little-endian, then the
// build in the high nibble and the event bits in the low one).
func EncodeEvents(evs []FirstEvent) []byte {
	out := make([]byte, 1, 1+9*len(evs))
	out[0] = eventsEncoding
	for _, e := range evs {
		out = binary.LittleEndian.AppendUint64(out, e.User)
		out = append(out, byte(e.Build)<<4|e.Events&eventMask)
	}
	return out
}

// DecodeEvents decodes what EncodeEvents wrote; malformed input is an error
// wrapping ErrEventsEncoding.
func DecodeEvents(b []byte) ([]FirstEvent, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != eventsEncoding {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrEventsEncoding, b[0], eventsEncoding)
	}
	if (len(b)-1)%9 != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the version, not a multiple of 9", ErrEventsEncoding, len(b)-1)
	}
	out := make([]FirstEvent, 0, (len(b)-1)/9)
	for p := 1; p < len(b); p += 9 {
		e := FirstEvent{User: binary.LittleEndian.Uint64(b[p:]), Build: Build(b[p+8] >> 4), Events: b[p+8] & eventMask}
		if e.Build > Canary {
			return nil, fmt.Errorf("%w: build %d at byte %d", ErrEventsEncoding, e.Build, p+8)
		}
		out = append(out, e)
	}
	return out, nil
}
