package cohort

import (
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Subject is what a segment condition looks at.
type Subject uint8

// Condition subjects.
const (
	SubjectHeader Subject = iota + 1
	SubjectClaim
	SubjectCookie // the cookie is present
	SubjectPath   // the path starts with Name
	SubjectNetwork
)

// Condition is one compiled segment rule. For header and claim subjects
// exactly one of Equals, Pattern or MinVersion applies.
type Condition struct {
	Subject    Subject
	Name       string
	Equals     string
	Pattern    *regexp.Regexp
	MinVersion []int
	Networks   []netip.Prefix
}

// Match reports whether the request satisfies the condition.
func (c *Condition) Match(r *http.Request, client netip.Addr) bool {
	switch c.Subject {
	case SubjectHeader:
		return c.test(r.Header.Get(c.Name))
	case SubjectClaim:
		return c.test(JWTClaim(r.Header.Get("Authorization"), c.Name))
	case SubjectCookie:
		return cookieValue(r, c.Name) != ""
	case SubjectPath:
		return strings.HasPrefix(r.URL.Path, c.Name)
	case SubjectNetwork:
		for _, p := range c.Networks {
			if p.Contains(client) {
				return true
			}
		}
	}
	return false
}

func (c *Condition) test(v string) bool {
	switch {
	case v == "":
		return false
	case c.Pattern != nil:
		return c.Pattern.MatchString(v)
	case c.MinVersion != nil:
		return VersionAtLeast(v, c.MinVersion)
	default:
		return v == c.Equals
	}
}

// VersionAtLeast compares a dotted numeric version ("5.10.1", "v5.2-beta")
// with min, component by component; missing components count as 0. A value
// that is not a version never matches.
func VersionAtLeast(v string, min []int) bool {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	for i := 0; ; i++ {
		if v == "" && i >= len(min) {
			return true
		}
		var part string
		part, v, _ = strings.Cut(v, ".")
		n := 0
		if part != "" {
			var err error
			if n, err = strconv.Atoi(part); err != nil {
				return false
			}
		}
		m := 0
		if i < len(min) {
			m = min[i]
		}
		if n != m {
			return n > m
		}
		if v == "" && i+1 >= len(min) {
			return true
		}
	}
}
