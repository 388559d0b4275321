package cdevents

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/deploydb/deploydb"
)

// PackageURL is a parsed package URL (https://github.com/package-url/purl-spec):
// pkg:type/namespace/name@version?qualifiers#subpath, every part decoded.
type PackageURL struct {
	// Type is the package type, lower case: maven, generic, oci, npm, ...
	Type string
	// Namespace is the decoded namespace segments joined by "/"; empty when
	// the purl has none.
	Namespace string
	Name      string
	Version   string
	// Qualifiers holds the decoded qualifier values by lower-case key
	// (download_url, checksum, ...); nil when there are none.
	Qualifiers map[string]string
	// Subpath is the decoded subpath; empty when there is none.
	Subpath string
}

// Group returns the DeployDB artifact group the purl names: its namespace,
// or its type when it has no namespace (pkg:oci/myapp@... is in group
// "oci").
func (p PackageURL) Group() string {
	if p.Namespace != "" {
		return p.Namespace
	}
	return p.Type
}

// Artifact returns the DeployDB artifact the purl names, with the
// download_url qualifier (if any) as its source URL.
func (p PackageURL) Artifact() deploydb.Artifact {
	return deploydb.Artifact{Group: p.Group(), Name: p.Name, Version: p.Version, SourceURL: p.Qualifiers["download_url"]}
}

// PURL returns the package URL of a DeployDB artifact:
// pkg:maven/<group>/<name>@<version> when group looks like a Maven groupId
// (it contains a dot and no slash), else pkg:generic/<group>/<name>@<version>,
// where a group with slashes becomes several namespace segments. Every part
// is percent-encoded except the purl spec's unreserved characters, so that
// ParsePURL returns exactly the group, name and version given. The
// arguments are the non-empty UTF-8 fields of a valid artifact.
func PURL(group, name, version string) string {
	var b strings.Builder
	b.WriteString("pkg:")
	if strings.Contains(group, ".") && !strings.Contains(group, "/") {
		b.WriteString("maven/")
		b.WriteString(escapeSegment(group))
	} else {
		b.WriteString("generic/")
		segs := strings.Split(group, "/")
		if slices.Contains(segs, "") {
			// A parser drops empty segments, so a group like "a//b" or "/a"
			// is written as one segment with its slashes encoded.
			segs = []string{group}
		}
		for i, s := range segs {
			if i > 0 {
				b.WriteByte('/')
			}
			b.WriteString(escapeSegment(s))
		}
	}
	b.WriteByte('/')
	b.WriteString(escapeSegment(name))
	b.WriteByte('@')
	b.WriteString(escape(version))
	return b.String()
}

// escapeSegment escapes one path segment; "." and ".." are encoded too, so
// that a URL library cannot take them for relative path steps.
func escapeSegment(s string) string {
	if s == "." || s == ".." {
		return strings.Repeat("%2E", len(s))
	}
	return escape(s)
}

// escape percent-encodes every byte but the unreserved characters of
// RFC 3986 (ALPHA, DIGIT, "-", ".", "_", "~").
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

// ParsePURL parses a package URL following the purl spec's parsing rules.
// DeployDB needs a version, so a purl without one is refused. Returns
// EINVALID, saying what is wrong, when s is not a package URL.
func ParsePURL(s string) (PackageURL, error) {
	p, err := parsePURL(s)
	if err != nil {
		return PackageURL{}, deploydb.Errorf(deploydb.EINVALID, "%s is not a package URL: %v", short(s), err)
	}
	return p, nil
}

// parsePURL returns errors that say what is wrong, without repeating s.
func parsePURL(s string) (PackageURL, error) {
	var p PackageURL
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "pkg") {
		return p, errors.New(`it must start with "pkg:" (pkg:type/namespace/name@version)`)
	}
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		sub, err := parseSubpath(rest[i+1:])
		if err != nil {
			return p, err
		}
		p.Subpath, rest = sub, rest[:i]
	}
	if i := strings.LastIndexByte(rest, '?'); i >= 0 {
		q, err := parseQualifiers(rest[i+1:])
		if err != nil {
			return p, err
		}
		p.Qualifiers, rest = q, rest[:i]
	}
	rest = strings.TrimLeft(rest, "/")
	typ, rest, ok := strings.Cut(rest, "/")
	if err := checkType(typ); err != nil {
		return p, err
	}
	p.Type = strings.ToLower(typ)
	if !ok {
		return p, errors.New("it has no name (pkg:type/namespace/name@version)")
	}
	rest = strings.TrimRight(rest, "/")
	// The version follows the last "@" of the last segment; an "@" before
	// the last "/" belongs to the namespace (as in pkg:npm/@angular/core).
	if at := strings.LastIndexByte(rest, '@'); at > strings.LastIndexByte(rest, '/') {
		v, err := unescape(rest[at+1:], "version")
		if err != nil {
			return p, err
		}
		p.Version, rest = v, rest[:at]
	}
	name := rest
	var segs []string
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		name = rest[i+1:]
		for _, seg := range strings.Split(rest[:i], "/") {
			if seg == "" {
				continue
			}
			v, err := unescape(seg, "namespace")
			if err != nil {
				return p, err
			}
			segs = append(segs, v)
		}
	}
	p.Namespace = strings.Join(segs, "/")
	n, err := unescape(name, "name")
	if err != nil {
		return p, err
	}
	p.Name = n
	if p.Name == "" {
		return p, errors.New("it has no name (pkg:type/namespace/name@version)")
	}
	if p.Version == "" {
		return p, errors.New("it has no version; DeployDB needs one (pkg:type/namespace/name@version)")
	}
	return p, nil
}

// checkType checks a purl type: ASCII letters, digits, ".", "+" and "-",
// not starting with a digit.
func checkType(typ string) error {
	if typ == "" {
		return errors.New("it has no type (pkg:type/namespace/name@version)")
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '.', c == '+', c == '-':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return fmt.Errorf("type %s may hold only letters, digits, '.', '+' and '-', and must not start with a digit", short(typ))
		}
	}
	return nil
}

func parseQualifiers(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	q := make(map[string]string)
	for _, kv := range strings.Split(s, "&") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("qualifier %s has no value (key=value)", short(kv))
		}
		k = strings.ToLower(k)
		if err := checkQualifierKey(k); err != nil {
			return nil, err
		}
		v, err := unescape(v, "qualifier "+k)
		if err != nil {
			return nil, err
		}
		if v == "" {
			continue // the spec says to drop a qualifier without a value
		}
		if _, dup := q[k]; dup {
			return nil, fmt.Errorf("qualifier %s is given twice", short(k))
		}
		q[k] = v
	}
	if len(q) == 0 {
		return nil, nil
	}
	return q, nil
}

func checkQualifierKey(k string) error {
	if k == "" {
		return errors.New("a qualifier has an empty key")
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', c == '.', c == '-', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return fmt.Errorf("qualifier key %s may hold only letters, digits, '.', '-' and '_', and must not start with a digit", short(k))
		}
	}
	return nil
}

func parseSubpath(s string) (string, error) {
	var segs []string
	for _, seg := range strings.Split(s, "/") {
		if seg == "" || seg == "." || seg == ".." {
			continue // the spec says to drop these
		}
		v, err := unescape(seg, "subpath")
		if err != nil {
			return "", err
		}
		segs = append(segs, v)
	}
	return strings.Join(segs, "/"), nil
}

// unescape decodes percent-encoding ("+" stays a plus) and requires UTF-8.
func unescape(s, part string) (string, error) {
	v, err := url.PathUnescape(s)
	if err != nil {
		var esc url.EscapeError
		if errors.As(err, &esc) {
			return "", fmt.Errorf("the %s has a bad percent-encoding %s", part, short(string(esc)))
		}
		return "", fmt.Errorf("the %s: %w", part, err)
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("the %s is not UTF-8 once decoded", part)
	}
	return v, nil
}
