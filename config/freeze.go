package config

import (
	"strings"
	"time"
	// Time zones are compiled in, so that freezes load the same on a host
	// without /usr/share/zoneinfo (a scratch or distroless container).
	_ "time/tzdata"

	"github.com/goccy/go-yaml/ast"

	"github.com/deploydb/deploydb"
)

// weeklyFreezeKeys are the keys of a weekly freeze window.
func weeklyFreezeKeys() []string { return []string{"timezone", "days", "from", "to"} }

// absoluteFreezeKeys are the keys of an absolute freeze window.
func absoluteFreezeKeys() []string { return []string{"start", "end"} }

// freezes decodes the freeze windows of an environment: a list of weekly
// {reason, timezone, days, from, to} or absolute {reason, start, end}
// windows. A window with a problem is left out.
func (d *decoder) freezes(n ast.Node, field string) []deploydb.Freeze {
	items, _ := d.sequence(n, field)
	out := make([]deploydb.Freeze, 0, len(items))
	for i, item := range items {
		if f, ok := d.freeze(item, index(field, i)); ok {
			out = append(out, f)
		}
	}
	return out
}

// freeze decodes one freeze window. It reports false if it found a problem.
func (d *decoder) freeze(n ast.Node, field string) (deploydb.Freeze, bool) {
	before := len(d.problems)
	known := append(append([]string{"reason"}, weeklyFreezeKeys()...), absoluteFreezeKeys()...)
	entries, isMap := d.object(n, field, known)
	if !isMap {
		return deploydb.Freeze{}, false
	}
	keys := map[string]entry{}
	for _, e := range entries {
		keys[e.key] = e
	}
	var f deploydb.Freeze
	if e, ok := keys["reason"]; ok {
		t, _ := d.str(e.value, e.field)
		f.Reason = strings.TrimSpace(t.value)
		if f.Reason == "" {
			d.errorf(e.value, e.field, "must say why the environment is frozen, not be empty")
		}
	} else {
		d.errorf(n, join(field, "reason"), "required: why the environment is frozen, shown to whoever waits")
	}

	weekly, absolute := firstOf(entries, weeklyFreezeKeys()), firstOf(entries, absoluteFreezeKeys())
	switch {
	case weekly != nil && absolute != nil:
		later := absolute
		if line(weekly.keyNode) > line(absolute.keyNode) {
			later = weekly
		}
		d.errorf(later.keyNode, later.field, "a freeze is weekly (days, from, to, timezone) or absolute (start, end), not both")
	case weekly != nil:
		d.weeklyFreeze(&f, n, field, keys)
	case absolute != nil:
		d.absoluteFreeze(&f, n, field, keys)
	default:
		d.errorf(n, field, "required: days, from and to for a weekly freeze, or start and end for an absolute one")
	}
	return f, len(d.problems) == before
}

// firstOf returns the first of entries whose key is one of keys, or nil.
func firstOf(entries []entry, keys []string) *entry {
	for i, e := range entries {
		for _, k := range keys {
			if e.key == k {
				return &entries[i]
			}
		}
	}
	return nil
}

// weeklyFreeze decodes the keys of a weekly window into f.
func (d *decoder) weeklyFreeze(f *deploydb.Freeze, n ast.Node, field string, keys map[string]entry) {
	f.TimeZone = "UTC"
	e, set := keys["timezone"]
	var tz text
	if set {
		var ok bool
		if tz, ok = d.str(e.value, e.field); !ok {
			set = false // reported
		} else if tz.value != "" {
			f.TimeZone = tz.value
		}
	}
	loc, err := time.LoadLocation(f.TimeZone)
	switch {
	case set && f.TimeZone == "Local":
		// It would mean whatever zone the server happens to run in.
		d.errorf(e.value, e.field, "name the time zone, such as \"Europe/Berlin\" or \"UTC\": Local would be the server's own")
	case set && err != nil:
		d.errorf(e.value, e.field, "unknown time zone %s; use an IANA name such as \"Europe/Berlin\", or \"UTC\"", tz)
	default:
		f.Location = loc
	}

	if e, ok := keys["days"]; ok {
		f.Days = d.freezeDays(e.value, e.field)
	} else {
		d.errorf(n, join(field, "days"), "required for a weekly freeze: the days it starts on, such as [mon, tue, wed, thu, fri]")
	}
	from, fromOK := d.clock(n, field, keys, "from")
	if fromOK && from == 24*60 {
		e := keys["from"]
		d.errorf(e.value, e.field, "must be a time of day before 24:00")
		fromOK = false
	}
	to, toOK := d.clock(n, field, keys, "to")
	if fromOK && toOK {
		f.From, f.To = deploydb.FormatClock(from), deploydb.FormatClock(to)
	}
}

// freezeDays decodes a non-empty list of days into their FreezeDay names.
func (d *decoder) freezeDays(n ast.Node, field string) []string {
	items, ok := d.sequence(n, field)
	if ok && len(items) == 0 {
		d.errorf(n, field, "a weekly freeze starts on at least one day")
	}
	out := make([]string, 0, len(items))
	seen := map[time.Weekday]bool{}
	for i, item := range items {
		f := index(field, i)
		t, ok := d.str(item, f)
		if !ok {
			continue
		}
		wd, err := deploydb.ParseFreezeDay(t.value)
		switch {
		case err != nil:
			d.errorf(item, f, "unknown day %s; valid: mon, tue, wed, thu, fri, sat, sun", t)
		case seen[wd]:
			d.errorf(item, f, "day %s is listed twice", t)
		default:
			seen[wd] = true
			out = append(out, deploydb.FreezeDay(wd))
		}
	}
	return out
}

// clock decodes the required time of day at key, in minutes after
// midnight.
func (d *decoder) clock(n ast.Node, field string, keys map[string]entry, key string) (int, bool) {
	e, ok := keys[key]
	if !ok {
		d.errorf(n, join(field, key), "required for a weekly freeze: a time of day, \"HH:MM\"")
		return 0, false
	}
	t, ok := d.str(e.value, e.field)
	if !ok {
		return 0, false
	}
	m, err := deploydb.ParseClock(t.value)
	if err != nil {
		d.errorf(e.value, e.field, "must be a time of day %s, not %s", `"HH:MM" from "00:00" to "24:00"`, t)
		return 0, false
	}
	return m, true
}

// absoluteFreeze decodes the keys of an absolute window into f.
func (d *decoder) absoluteFreeze(f *deploydb.Freeze, n ast.Node, field string, keys map[string]entry) {
	start, startOK := d.instant(n, field, keys, "start")
	end, endOK := d.instant(n, field, keys, "end")
	if startOK && endOK && !end.After(start.Time) {
		e := keys["end"]
		d.errorf(e.value, e.field, "must be after start")
		return
	}
	if startOK && endOK {
		f.Start, f.End = &start, &end
	}
}

// instant decodes the required RFC 3339 time at key.
func (d *decoder) instant(n ast.Node, field string, keys map[string]entry, key string) (deploydb.Time, bool) {
	e, ok := keys[key]
	if !ok {
		d.errorf(n, join(field, key), "required for an absolute freeze: an RFC 3339 time such as \"2025-12-24T00:00:00+01:00\"")
		return deploydb.Time{}, false
	}
	t, ok := d.str(e.value, e.field)
	if !ok {
		return deploydb.Time{}, false
	}
	v, err := time.Parse(time.RFC3339, t.value)
	if err != nil {
		d.errorf(e.value, e.field, "must be an RFC 3339 time with a zone, such as \"2025-12-24T00:00:00+01:00\", not %s", t)
		return deploydb.Time{}, false
	}
	return deploydb.NewTime(v), true
}
