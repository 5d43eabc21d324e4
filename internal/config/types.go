package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as Go duration text ("10s", "2m").
type Duration time.Duration

// UnmarshalYAML parses duration text; a bare number is refused because its
// unit would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 10s, got a %s", n.Line, kindName(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use a unit: 500ms, 10s, 2m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as text.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Percent is a percentage in percent units (1% is 1.0). It accepts "1%",
// "1.5 %" and a bare number.
type Percent float64

// UnmarshalYAML parses "N%" or N.
func (p *Percent) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a percentage such as 5%%, got a %s", n.Line, kindName(n))
	}
	s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(n.Value), "%"))
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a percentage (write 5%% or 5)", n.Line, n.Value)
	}
	*p = Percent(v)
	return nil
}

// Endpoint is one replica of a build: "host:port", or a mapping with an
// address and a weight.
type Endpoint struct {
	Address string `yaml:"address"`
	Weight  int    `yaml:"weight"`
}

// UnmarshalYAML accepts "host:port" or {address: host:port, weight: N}.
func (e *Endpoint) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		e.Address, e.Weight = n.Value, 1
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want host:port or {address, weight}, got a %s", n.Line, kindName(n))
	}
	type plain Endpoint
	var p plain
	if err := decodeStrict(n, &p, "address", "weight"); err != nil {
		return err
	}
	*e = Endpoint(p)
	if e.Weight == 0 {
		e.Weight = 1
	}
	return nil
}

// UserSource is one way of recognising a user, tried in configured order.
type UserSource struct {
	Kind string // "header", "cookie", "jwt_claim" or "client_address"
	Name string // header, cookie or claim name; empty for client_address
}

// User says how a user is recognised. Sources are tried in the order they
// are written in the file; the first that yields a key wins.
type User struct {
	Sources []UserSource
	// AnonymousCookie names the cookie the gateway sets for users without a
	// key, so they stay sticky too. Empty disables it.
	AnonymousCookie string
}

// UnmarshalYAML keeps the order of the mapping's keys, which is the order
// the sources are tried in.
func (u *User) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: user: want a mapping (header:, cookie:, jwt_claim:, client_address:), got a %s", n.Line, kindName(n))
	}
	u.Sources = nil
	u.AnonymousCookie = DefaultAnonymousCookie
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: user.%s: want a single value, got a %s", v.Line, k.Value, kindName(v))
		}
		switch k.Value {
		case "header", "cookie", "jwt_claim":
			u.Sources = append(u.Sources, UserSource{Kind: k.Value, Name: v.Value})
		case "client_address":
			on, err := strconv.ParseBool(v.Value)
			if err != nil {
				return fmt.Errorf("line %d: user.client_address: %q is not true or false", v.Line, v.Value)
			}
			if on {
				u.Sources = append(u.Sources, UserSource{Kind: "client_address"})
			}
		case "anonymous_cookie":
			u.AnonymousCookie = v.Value
		default:
			return fmt.Errorf("line %d: user: unknown field %q (known: header, cookie, jwt_claim, client_address, anonymous_cookie)", k.Line, k.Value)
		}
	}
	return nil
}

// CIDRs is a list of networks written as CIDR or single addresses.
type CIDRs []*net.IPNet

// UnmarshalYAML parses each entry; a bare address becomes a /32 or /128.
func (c *CIDRs) UnmarshalYAML(n *yaml.Node) error {
	var raw []string
	if err := n.Decode(&raw); err != nil {
		return fmt.Errorf("line %d: want a list of networks such as 10.0.0.0/8", n.Line)
	}
	out := make(CIDRs, 0, len(raw))
	for i, s := range raw {
		nw, err := ParseNetwork(s)
		if err != nil {
			return fmt.Errorf("line %d: [%d] %w", n.Content[i].Line, i, err)
		}
		out = append(out, nw)
	}
	*c = out
	return nil
}

// Contains reports whether ip is in any of the networks.
func (c CIDRs) Contains(ip net.IP) bool {
	for _, n := range c {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseNetwork parses "10.0.0.0/8" or a bare address.
func ParseNetwork(s string) (*net.IPNet, error) {
	if strings.Contains(s, "/") {
		_, nw, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a network (want CIDR such as 10.0.0.0/8)", s)
		}
		return nw, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q is not an IP address or CIDR network", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// decodeStrict decodes a mapping node into v after checking that every key is
// one of known, so custom unmarshalers keep the loader's strictness.
func decodeStrict(n *yaml.Node, v any, known ...string) error {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ok := false
		for _, f := range known {
			if k.Value == f {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("line %d: unknown field %q (known: %s)", k.Line, k.Value, strings.Join(known, ", "))
		}
	}
	return n.Decode(v)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("value %q", n.Value)
	}
	return "node"
}
