package judge

import (
	"encoding/binary"
	"testing"
)

// FuzzTracker checks the open-addressing set against a map: every user's
// first events are reported once, whatever the hashes (including 0 and
// colliding low bits) and however the table grows.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 1})
	f.Add([]byte("a slightly longer seed of users and events"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		tr := NewTracker(1)
		model := map[uint64]uint8{}
		var want [2][4]uint64
		for len(ops) >= 9 {
			user := binary.LittleEndian.Uint64(ops) & 0xff0000000000ffff // cluster hashes
			ev := ops[8] & eventMask
			b := Build(ops[8] >> 7)
			ops = ops[9:]
			fresh := ev &^ model[user]
			model[user] |= ev
			if got := tr.Add(user, b, ev); got != fresh {
				t.Fatalf("Add(%#x, %d, %04b) = %04b, want %04b", user, b, ev, got, fresh)
			}
			for k := range 4 {
				if fresh&(1<<k) != 0 {
					want[b][k]++
				}
			}
		}
		var bin Bin
		tr.Drain(&bin)
		for b, s := range []Sample{bin.Stable, bin.Canary} {
			got := [4]uint64{s.FirstErrors, s.FirstExceed[0], s.FirstExceed[1], s.FirstExceed[2]}
			if got != want[b] {
				t.Fatalf("build %d: drained %v, want %v", b, got, want[b])
			}
		}
		users := 0
		for _, ev := range model {
			if ev != 0 {
				users++
			}
		}
		if n, _ := tr.Users(); n != users {
			t.Fatalf("Users() = %d, want %d", n, users)
		}
	})
}
