package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the client's address: the TCP peer, or — when the peer
// is a trusted proxy — the rightmost address of X-Forwarded-For that is not
// itself trusted.
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr := peer.Addr().Unmap()
	if !inPrefixes(addr, trusted) {
		return addr, true
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr, true
			}
			a = a.Unmap()
			if !inPrefixes(a, trusted) {
				return a, true
			}
			addr = a
		}
	}
	return addr, true
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// forwarded returns the X-Forwarded-For, -Proto, -Host and Forwarded
// values to send for in, replacing the client's: a trusted peer's chain is
// kept and extended, anyone else's is dropped, so a client cannot forge its
// address.
func forwarded(in *http.Request, trusted []netip.Prefix) (xff, proto, host, fwd string) {
	peer := in.RemoteAddr
	if h, _, err := net.SplitHostPort(peer); err == nil {
		peer = h
	}
	xff, proto, host = peer, "http", in.Host
	if in.TLS != nil {
		proto = "https"
	}
	var prior string // a trusted peer's Forwarded chain
	if pa, err := netip.ParseAddr(peer); err == nil && inPrefixes(pa.Unmap(), trusted) {
		if chain := strings.Join(in.Header.Values("X-Forwarded-For"), ", "); chain != "" {
			xff = chain + ", " + peer
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		prior = strings.Join(in.Header.Values("Forwarded"), ", ")
	}
	fwd = "for=" + forwardedNode(peer) + ";host=" + quoteIfNeeded(in.Host) + ";proto=" + proto
	if prior != "" {
		fwd = prior + ", " + fwd
	}
	return xff, proto, host, fwd
}

// forwardedNode formats an address for RFC 7239: IPv6 quoted in brackets.
func forwardedNode(ip string) string {
	if strings.Contains(ip, ":") {
		return `"[` + ip + `]"`
	}
	return ip
}

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, ":;,\" ") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

// requestID keeps a sane incoming request id (header: canonical name) or
// makes a new one: 96 random bits in hex. The ids are for correlation,
// not secrets, so the runtime's generator does (crypto/rand was about 1 %
// of the CPU under the proxy benchmark).
func requestID(r *http.Request, header string) string {
	if v := r.Header[header]; len(v) > 0 && v[0] != "" && len(v[0]) <= 128 && printable(v[0]) {
		return v[0]
	}
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
