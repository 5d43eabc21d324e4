package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httputil"
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

// setForwarded writes X-Forwarded-For/-Proto/-Host and Forwarded on the
// outbound request. The ReverseProxy has already removed the client's
// copies; a trusted peer's chain is kept and extended, anyone else's is
// dropped, so a client cannot forge its address.
func setForwarded(pr *httputil.ProxyRequest, trusted []netip.Prefix) {
	in, out := pr.In, pr.Out
	peer := in.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	host := in.Host
	xff := peer
	var fwd string
	if pa, err := netip.ParseAddr(peer); err == nil && inPrefixes(pa.Unmap(), trusted) {
		if prior := strings.Join(in.Header.Values("X-Forwarded-For"), ", "); prior != "" {
			xff = prior + ", " + peer
		}
		if v := in.Header.Get("X-Forwarded-Proto"); v == "http" || v == "https" {
			proto = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
		fwd = strings.Join(in.Header.Values("Forwarded"), ", ")
	}
	out.Header["X-Forwarded-For"] = []string{xff}
	out.Header["X-Forwarded-Proto"] = []string{proto}
	out.Header["X-Forwarded-Host"] = []string{host}
	elem := "for=" + forwardedNode(peer) + ";host=" + quoteIfNeeded(in.Host) + ";proto=" + proto
	if fwd != "" {
		elem = fwd + ", " + elem
	}
	out.Header["Forwarded"] = []string{elem}
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

// requestID keeps a sane incoming request id or makes a new one.
func requestID(r *http.Request, header string) string {
	if v := r.Header.Get(header); v != "" && len(v) <= 128 && printable(v) {
		return v
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
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
