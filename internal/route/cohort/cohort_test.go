package cohort

import (
	"encoding/base64"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
)

// With 100 000 users and a 10 % window the canary share has a standard
// deviation of 0.095 pp, so ±0.5 pp is over five sigmas: a correct hash
// never fails this, a biased one does.
func TestSplitAccuracy(t *testing.T) {
	const users = 100000
	for _, pct := range []float64{1, 10, 30, 50} {
		for _, offset := range []uint32{0, 4321, 9990} {
			w := WindowFor(offset, pct)
			in := 0
			for u := 0; u < users; u++ {
				if w.Contains(Bucket("api", "user-"+strconv.Itoa(u))) {
					in++
				}
			}
			got := 100 * float64(in) / users
			if math.Abs(got-pct) > 0.5 {
				t.Errorf("%v%% at offset %d: canary share %.3f%%, want within ±0.5 pp", pct, offset, got)
			}
		}
	}
}

// Raising the percentage only adds users; lowering only removes them.
func TestWindowMonotone(t *testing.T) {
	for _, offset := range []uint32{0, 9500} {
		prev := WindowFor(offset, 0)
		for _, pct := range []float64{5, 10, 30, 50, 75, 100} {
			cur := WindowFor(offset, pct)
			for b := uint32(0); b < Buckets; b++ {
				if prev.Contains(b) && !cur.Contains(b) {
					t.Fatalf("offset %d: bucket %d left the canary when traffic rose to %v%%", offset, b, pct)
				}
			}
			prev = cur
		}
		if WindowFor(offset, 100).Size != Buckets {
			t.Fatal("100 % must cover every bucket")
		}
	}
}

// The hash is part of the routing contract: a user's bucket must not change
// between versions, or every upgrade would move users between builds.
func TestBucketIsStable(t *testing.T) {
	// Golden values: changing them moves every user of every deployment.
	for _, tc := range []struct {
		salt, key string
		want      uint64
	}{
		{"api", "user-42", 12860355334107484794},
		{"account", "u-1", 9483127209412156143},
		{"", "", 5705415379283624141},
		{"bench", "9999", 528536588595823632},
	} {
		if got := Hash(tc.salt, tc.key); got != tc.want {
			t.Errorf("Hash(%q, %q) = %d, want %d", tc.salt, tc.key, got, tc.want)
		}
		if got := Bucket(tc.salt, tc.key); got != uint32(tc.want%Buckets) {
			t.Errorf("Bucket(%q, %q) = %d, want %d", tc.salt, tc.key, got, tc.want%Buckets)
		}
	}
	if Hash("ab", "c") == Hash("a", "bc") {
		t.Fatal("salt and key must not run together")
	}
}

func request(h map[string]string) *http.Request {
	r := httptest.NewRequest("GET", "http://x/app/home", nil)
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return r
}

func jwt(payload string) string {
	return "Bearer eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".sig"
}

func TestUserKeySources(t *testing.T) {
	sources := []Source{{FromJWTClaim, "sub"}, {FromHeader, "X-User-Id"}, {FromCookie, "uid"}, {FromClientAddress, ""}}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		key     string
		from    SourceKind
	}{
		{"claim first", map[string]string{"Authorization": jwt(`{"sub":"alice"}`), "X-User-ID": "bob"}, "alice", FromJWTClaim},
		{"numeric claim", map[string]string{"Authorization": jwt(`{"sub":12345}`)}, "12345", FromJWTClaim},
		{"bad token falls through", map[string]string{"Authorization": "Bearer !!!.###.x", "X-User-ID": "bob"}, "bob", FromHeader},
		{"header", map[string]string{"X-User-ID": "bob"}, "bob", FromHeader},
		{"cookie", map[string]string{"Cookie": "a=1; uid=carol; b=2"}, "carol", FromCookie},
		{"address last", nil, "10.1.2.3", FromClientAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, from := UserKey(request(tc.headers), sources, "10.1.2.3")
			if key != tc.key || from != tc.from {
				t.Fatalf("got (%q, %d), want (%q, %d)", key, from, tc.key, tc.from)
			}
		})
	}
	long := make([]byte, MaxKeyLen+1)
	for i := range long {
		long[i] = 'a'
	}
	if key, _ := UserKey(request(map[string]string{"X-User-ID": string(long)}), sources[1:2], ""); key != "" {
		t.Fatal("an oversized key must be ignored")
	}
}

func TestDecideOverridesAndSegments(t *testing.T) {
	trusted := netip.MustParsePrefix("10.0.0.0/8")
	r := &Rules{
		Salt: "api", Window: WindowFor(0, 0.01), // one bucket: nobody by chance
		OverrideHeader: "X-Canary", OverrideTrusted: []netip.Prefix{trusted},
		Allow: map[string]struct{}{"tester": {}}, Deny: map[string]struct{}{"vip": {}},
		Segment: []Condition{{Subject: SubjectHeader, Name: "X-App-Version", MinVersion: []int{5, 2}}},
	}
	inside, outside := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name    string
		headers map[string]string
		key     string
		client  netip.Addr
		canary  bool
		reason  Reason
	}{
		{"header always, trusted", map[string]string{"X-Canary": "always"}, "u", inside, true, OverrideHeader},
		{"header always, untrusted ignored", map[string]string{"X-Canary": "always", "X-App-Version": "5.2"}, "u", outside, false, OutsideWindow},
		{"header never beats allow list", map[string]string{"X-Canary": "never"}, "tester", inside, false, OverrideHeader},
		{"deny list", map[string]string{"X-App-Version": "9"}, "vip", outside, false, DenyList},
		{"allow list ignores segment", nil, "tester", outside, true, AllowList},
		{"old app outside segment", map[string]string{"X-App-Version": "5.1.9"}, "u", outside, false, OutsideSegment},
		{"no version outside segment", nil, "u", outside, false, OutsideSegment},
		{"new app in segment", map[string]string{"X-App-Version": "5.10"}, "u", outside, false, OutsideWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Decide(request(tc.headers), tc.key, tc.client, true)
			if d.Canary != tc.canary || d.Reason != tc.reason {
				t.Fatalf("got canary=%v reason=%v, want canary=%v reason=%v", d.Canary, d.Reason, tc.canary, tc.reason)
			}
		})
	}
	if d := r.Decide(request(map[string]string{"X-Canary": "always"}), "u", inside, false); d.Canary || d.Reason != NoCanary {
		t.Fatalf("no canary: got %+v", d)
	}
}

// A segment restricts who may join: at 50 % of the segment, about half of
// the eligible users and none of the others land on the canary.
func TestSegmentHolds(t *testing.T) {
	r := &Rules{Salt: "api", Window: WindowFor(0, 50),
		Segment: []Condition{{Subject: SubjectHeader, Name: "X-Platform", Equals: "android"}}}
	canary := map[string]int{}
	for u := 0; u < 20000; u++ {
		platform := "ios"
		if u%2 == 0 {
			platform = "android"
		}
		d := r.Decide(request(map[string]string{"X-Platform": platform}), strconv.Itoa(u), netip.Addr{}, true)
		if d.Canary {
			canary[platform]++
		}
	}
	if canary["ios"] != 0 {
		t.Fatalf("%d users outside the segment got the canary", canary["ios"])
	}
	if got := float64(canary["android"]) / 10000; math.Abs(got-0.5) > 0.03 {
		t.Fatalf("share of the segment on canary %.3f, want 0.50 ± 0.03", got)
	}
}

func TestWeightedShare(t *testing.T) {
	r := &Rules{Salt: "api", Mode: Weighted, Percent: 10}
	n, in := 100000, 0
	for i := 0; i < n; i++ {
		if r.Decide(request(nil), "same-user", netip.Addr{}, true).Canary {
			in++
		}
	}
	// sd of the share is 0.095 pp; ±0.6 pp is over six sigmas.
	if got := 100 * float64(in) / float64(n); math.Abs(got-10) > 0.6 {
		t.Fatalf("weighted share %.2f%%, want 10 ± 0.6", got)
	}
}

func TestVersionAtLeast(t *testing.T) {
	min := []int{5, 2}
	for v, want := range map[string]bool{"5.2": true, "5.2.0": true, "5.10": true, "6": true, "v5.3-beta": true,
		"5.1.99": false, "5": false, "4.9": false, "abc": false, "5.x": false} {
		if got := VersionAtLeast(v, min); got != want {
			t.Errorf("VersionAtLeast(%q, 5.2) = %v, want %v", v, got, want)
		}
	}
}

func FuzzBucket(f *testing.F) {
	f.Add("api", "user-42")
	f.Fuzz(func(t *testing.T, salt, key string) {
		if b := Bucket(salt, key); b >= Buckets {
			t.Fatalf("Bucket(%q, %q) = %d, want < %d", salt, key, b, Buckets)
		}
	})
}

func FuzzUserKey(f *testing.F) {
	f.Add("Bearer a.eyJzdWIiOiJ4In0.b", "uid=1; x=2", "user")
	f.Fuzz(func(t *testing.T, auth, cookie, header string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Authorization"] = []string{auth}
		r.Header["Cookie"] = []string{cookie}
		r.Header["X-User-Id"] = []string{header}
		key, _ := UserKey(r, []Source{{FromJWTClaim, "sub"}, {FromCookie, "uid"}, {FromHeader, "X-User-Id"}}, "")
		if len(key) > MaxKeyLen {
			t.Fatalf("key of %d bytes", len(key))
		}
	})
}

func BenchmarkDecideSticky(b *testing.B) {
	r := &Rules{Salt: "api", Window: WindowFor(0, 10), OverrideHeader: "X-Canary"}
	req := request(map[string]string{"X-User-ID": "user-123456"})
	src := []Source{{FromHeader, "X-User-Id"}}
	b.ReportAllocs()
	for b.Loop() {
		key, _ := UserKey(req, src, "")
		_ = r.Decide(req, key, netip.Addr{}, true)
	}
}
