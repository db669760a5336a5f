package prometheus

// The OpenMetrics text the core writes (`Client.Metrics()`), read back into families.
//
// The failure prevented: a collector that guesses at the exposition (splitting on spaces,
// ignoring escapes or the `_total` suffix) silently drops or mislabels series. The grammar read
// here is the subset the core's encoder writes — `# HELP`, `# TYPE`, `# UNIT`, samples
// `name{label="value",...} value`, and `# EOF` — and anything else is an error naming the line,
// never a skipped series.

import (
	"fmt"
	"strconv"
	"strings"
)

// family is one metric family: its name (as in `# TYPE`), type, help and samples.
type family struct {
	name, kind, help string
	samples          []sample
}

// sample is one line of a family.
type sample struct {
	name   string
	labels []label
	value  float64
}

type label struct{ name, value string }

// parse reads the families of text, in order.
func parse(text string) ([]*family, error) {
	var families []*family
	byName := map[string]*family{}
	for i, line := range strings.Split(text, "\n") {
		if line == "" || line == "# EOF" {
			continue
		}
		if err := parseLine(line, &families, byName); err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", i+1, line, err)
		}
	}
	return families, nil
}

func parseLine(line string, families *[]*family, byName map[string]*family) error {
	if rest, ok := strings.CutPrefix(line, "# "); ok {
		keyword, rest, _ := strings.Cut(rest, " ")
		name, value, _ := strings.Cut(rest, " ")
		f := byName[name]
		if f == nil {
			f = &family{name: name}
			byName[name] = f
			*families = append(*families, f)
		}
		switch keyword {
		case "TYPE":
			f.kind = value
		case "HELP":
			f.help = unescape(value)
		case "UNIT":
		default:
			return fmt.Errorf("unknown comment %q", keyword)
		}
		return nil
	}
	s, err := parseSample(line)
	if err != nil {
		return err
	}
	f := byName[familyOf(s.name, byName)]
	if f == nil {
		return fmt.Errorf("sample %q has no # TYPE before it", s.name)
	}
	f.samples = append(f.samples, s)
	return nil
}

// familyOf is the family a sample name belongs to (`x_total` → `x`, `x_bucket` → `x`, ...).
func familyOf(name string, byName map[string]*family) string {
	if _, ok := byName[name]; ok {
		return name
	}
	for _, suffix := range []string{"_total", "_bucket", "_sum", "_count", "_created"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, known := byName[base]; known {
				return base
			}
		}
	}
	return name
}

func parseSample(line string) (sample, error) {
	var s sample
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.name, line = line[:end], line[end:]
	if strings.HasPrefix(line, "{") {
		labels, rest, err := parseLabels(line[1:])
		if err != nil {
			return s, err
		}
		s.labels, line = labels, rest
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: %w", fields[0], err)
	}
	s.value = v
	return s, nil
}

// parseLabels reads `name="value",...}` and returns the rest of the line after `}`.
func parseLabels(text string) ([]label, string, error) {
	var labels []label
	for {
		if rest, ok := strings.CutPrefix(text, "}"); ok {
			return labels, rest, nil
		}
		name, rest, ok := strings.Cut(text, "=\"")
		if !ok || name == "" {
			return nil, "", fmt.Errorf("bad label at %q", text)
		}
		value, rest, err := quoted(rest)
		if err != nil {
			return nil, "", err
		}
		labels = append(labels, label{name: name, value: value})
		text = strings.TrimPrefix(rest, ",")
	}
}

// quoted reads an escaped label value up to its closing quote.
func quoted(text string) (string, string, error) {
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '"':
			return b.String(), text[i+1:], nil
		case '\\':
			if i+1 == len(text) {
				return "", "", fmt.Errorf("unterminated escape")
			}
			i++
			b.WriteString(unescape(`\` + string(text[i])))
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated label value")
}

// unescape undoes the exposition's escapes (`\\`, `\"`, `\n`).
func unescape(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(s)
}
