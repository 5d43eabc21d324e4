package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lines maps a field path such as "services[0].builds[1].state" to the line
// it was written on, so validation errors can point into the file.
type lines map[string]int

func newLines(root *yaml.Node) lines {
	l := lines{}
	if root != nil && len(root.Content) > 0 {
		l.walk("", root.Content[0])
	}
	return l
}

func (l lines) walk(path string, n *yaml.Node) {
	if path != "" {
		l[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			l[p] = n.Content[i].Line
			l.walk(p, n.Content[i+1])
			l[p] = n.Content[i].Line
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.walk(fmt.Sprintf("%s[%d]", path, i), c)
		}
	}
}

// at returns the line of path, or of its nearest written parent (a default
// value has no line of its own), or 0.
func (l lines) at(path string) int {
	for p := path; p != ""; {
		if n, ok := l[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// problems collects validation errors with their lines.
type problems struct {
	lines lines
	list  []string
}

func (p *problems) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n := p.lines.at(path); n > 0 {
		p.list = append(p.list, fmt.Sprintf("line %d: %s: %s", n, path, msg))
		return
	}
	p.list = append(p.list, fmt.Sprintf("%s: %s", path, msg))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(p.list, "\n"))
}
