package web

import (
	"html"
	"html/template"
	"net/url"
	"strings"
	"time"
)

// The matrix's cells are written here rather than by a template: at
// 1,000 services × 20 environments html/template spent about 100 ms on
// them (its escaping and reflection, for each of ten actions a cell),
// this about a tenth of that. Everything taken from data is escaped.

// cell returns the HTML of one cell.
func (u *UI) cell(c cellView) template.HTML {
	var b strings.Builder
	u.writeCell(&b, c)
	return template.HTML(b.String()) //nolint:gosec // built from escaped parts (writeCell)
}

// row returns the HTML of one row of the matrix, its service's name first.
func (u *UI) row(r matrixRow) template.HTML {
	var b strings.Builder
	b.Grow(64 + 96*len(r.Cells))
	name := html.EscapeString(r.Service)
	b.WriteString(`<tr data-service="`)
	b.WriteString(name)
	b.WriteString(`"><th scope="row"><a href="/services/`)
	b.WriteString(html.EscapeString(pathEscape(r.Service)))
	b.WriteString(`">`)
	b.WriteString(name)
	b.WriteString(`</a></th>`)
	for _, c := range r.Cells {
		u.writeCell(&b, c)
	}
	b.WriteString("</tr>\n")
	return template.HTML(b.String()) //nolint:gosec // built from escaped parts
}

func (u *UI) writeCell(b *strings.Builder, c cellView) {
	if !c.InPipeline {
		b.WriteString(`<td class="out"></td>`)
		return
	}
	b.WriteString(`<td class="`)
	b.WriteString(c.Class)
	b.WriteString(`"><span class="v">`)
	if c.Version != "" {
		b.WriteString(html.EscapeString(c.Version))
	} else {
		b.WriteString("–")
	}
	b.WriteString(`</span> <span class="s">`)
	b.WriteString(html.EscapeString(c.State))
	b.WriteString(`</span>`)
	if !c.Since.IsZero() {
		at := c.Since.UTC().Format(time.RFC3339)
		b.WriteString(` <time datetime="`)
		b.WriteString(at)
		b.WriteString(`" title="`)
		b.WriteString(at)
		b.WriteString(`">`)
		b.WriteString(u.ago(c.Since))
		b.WriteString(`</time>`)
	}
	if f := c.InFlight; f != nil {
		b.WriteString(` <span class="inflight">→ `)
		b.WriteString(html.EscapeString(f.Artifact.Version))
		b.WriteString(" ")
		b.WriteString(html.EscapeString(strings.ToLower(string(f.Status))))
		b.WriteString(`</span>`)
	}
	if c.Locked {
		b.WriteString(` <span class="badge locked">locked</span>`)
	}
	b.WriteString(`</td>`)
}

// pathEscape escapes s as one segment of a URL path.
func pathEscape(s string) string { return url.PathEscape(s) }
