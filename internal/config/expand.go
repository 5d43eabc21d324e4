package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

var varRef = regexp.MustCompile(`\$\$|\$\{([^}]*)\}`)

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} with the variable's value in every line's content
// (comments are left alone, so a comment may mention ${VAR}). "$$" writes a
// literal "$". Lines keep their numbers, so decode errors still point at the
// right line. An unset variable, a bad name or a value with a newline is an
// error naming the line.
func expand(data []byte, env LookupEnv) ([]byte, error) {
	lines := bytes.Split(data, []byte("\n"))
	var out bytes.Buffer
	var errs []string
	for i, line := range lines {
		content, comment := splitComment(string(line))
		expanded := varRef.ReplaceAllStringFunc(content, func(m string) string {
			if m == "$$" {
				return "$"
			}
			name := m[2 : len(m)-1]
			if !varName.MatchString(name) {
				errs = append(errs, fmt.Sprintf("line %d: %q is not a valid variable name", i+1, name))
				return m
			}
			v, ok := env(name)
			if !ok {
				errs = append(errs, fmt.Sprintf("line %d: environment variable %s is not set", i+1, name))
				return m
			}
			if strings.ContainsAny(v, "\r\n") {
				errs = append(errs, fmt.Sprintf("line %d: environment variable %s contains a newline", i+1, name))
				return m
			}
			return v
		})
		out.WriteString(expanded)
		out.WriteString(comment)
		if i < len(lines)-1 {
			out.WriteByte('\n')
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out.Bytes(), nil
}

// splitComment splits a YAML line at the '#' that starts a comment: one at
// the line's start or after a blank, outside quotes.
func splitComment(line string) (content, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				if quote == '\'' && i+1 < len(line) && line[i+1] == '\'' {
					i++ // '' escapes a quote inside single quotes
					continue
				}
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
		case c == '"' || c == '\'':
			if i == 0 || strings.ContainsRune(" \t:[{,-", rune(line[i-1])) {
				quote = c
			}
		case c == '#':
			if i == 0 || line[i-1] == ' ' || line[i-1] == '\t' {
				return line[:i], line[i:]
			}
		}
	}
	return line, ""
}
