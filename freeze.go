package deploydb

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Freeze is a window in which an environment activates nothing: a
// deployment that becomes due during it waits until the window ends.
// Nothing already running is touched.
//
// A freeze is either weekly, recurring on Days from From to To in TimeZone,
// or absolute, from Start to End. The config loader fills in one kind or
// the other, never both.
type Freeze struct {
	// Reason says why, for people: shown by the API and in events.
	Reason string `json:"reason"`

	// TimeZone is the IANA name of the zone From and To are read in, such
	// as "Europe/Berlin"; "UTC" unless the config says otherwise.
	TimeZone string `json:"timezone,omitempty"`
	// Days are the days a weekly window starts on, as FreezeDay names
	// them: "mon", "tue", "wed", "thu", "fri", "sat", "sun".
	Days []string `json:"days,omitempty"`
	// From and To are wall-clock times "HH:MM" in TimeZone. The window
	// starts at From on each of Days and ends at To the same day, or the
	// next day when To is not after From: 22:00 to 06:00 crosses midnight,
	// and From equal to To lasts a whole day. To may be "24:00", the end of
	// the day.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Location is TimeZone, loaded by the config loader. Nil means
	// TimeZone is loaded when needed (a Freeze decoded from JSON).
	Location *time.Location `json:"-"`

	// Start and End bound an absolute window: frozen from Start, included,
	// to End, excluded.
	Start *Time `json:"start,omitempty"`
	End   *Time `json:"end,omitempty"`
}

// Weekly reports whether f recurs every week, rather than being one
// absolute window.
func (f *Freeze) Weekly() bool { return f.Start == nil && f.End == nil }

// freezeDays are the names of the days, three letters each, in the order
// of time.Weekday (Sunday first).
const freezeDays = "sunmontuewedthufrisat"

// FreezeDay returns the name Freeze.Days uses for d: "mon" for Monday.
func FreezeDay(d time.Weekday) string {
	i := int(d%7) * 3
	return freezeDays[i : i+3]
}

// ParseFreezeDay parses a day of a weekly freeze: its three-letter name
// ("mon") or its English name ("monday"), in any case.
func ParseFreezeDay(s string) (time.Weekday, error) {
	low := strings.ToLower(s)
	for d := time.Sunday; d <= time.Saturday; d++ {
		if low == FreezeDay(d) || low == strings.ToLower(d.String()) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown day %q; valid: mon, tue, wed, thu, fri, sat, sun", s)
}

// ParseClock parses a wall-clock time "HH:MM" (or "H:MM"), from "00:00" to
// "24:00", and returns it in minutes after midnight.
func ParseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	bad := fmt.Errorf("invalid time of day %q: write HH:MM, from 00:00 to 24:00", s)
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return 0, bad
	}
	hour, _ := strconv.Atoi(h)
	minute, _ := strconv.Atoi(m)
	if hour > 24 || minute > 59 || (hour == 24 && minute != 0) {
		return 0, bad
	}
	return hour*60 + minute, nil
}

// FormatClock writes minutes after midnight as "HH:MM".
func FormatClock(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FrozenAt reports whether the environment is in a freeze window at t, the
// reason of that window and until when the environment stays frozen.
//
// When several windows are in force at t, reason is that of the first of
// them in the order of Freezes. until is the end of the whole freeze: the
// first instant after t at which no window is in force, following windows
// that overlap or touch one another. It is zero when the windows cover
// every instant from t on, so that the freeze never ends.
func (e *Environment) FrozenAt(t time.Time) (frozen bool, reason string, until time.Time) {
	a := e.freezeWindows().answer(t)
	return a.frozen, a.reason, a.until
}

// maxFreezeSteps bounds the work of NextFreezeChange on windows that keep
// starting and ending without changing its answer for years (weekly windows
// covering the whole week with one reason, and an absolute window far
// ahead).
const maxFreezeSteps = 1000

// NextFreezeChange returns the first instant after t at which FrozenAt
// answers differently than at t (a window starts or ends), or the zero time
// if its answer never changes again. A server sets its timer by it to
// activate what a freeze held back. On windows that go on without a change
// for more than a thousand starts and ends, it may return an earlier
// instant at which nothing changes; asking again from there goes on.
func (e *Environment) NextFreezeChange(t time.Time) time.Time {
	ws := e.freezeWindows()
	horizon := ws.horizon(t)
	now := ws.answer(t)
	forever := now.frozen && now.until.IsZero()
	// quiet is since when no absolute window started or ended.
	x, at, quiet := t, now, t
	for range maxFreezeSteps {
		c, ok := ws.nextCandidate(x, at)
		if !ok || c.After(horizon) {
			// Past the last absolute window, the weekly windows repeat
			// every week: an answer unchanged for more than a week never
			// changes.
			return time.Time{}
		}
		a := ws.answer(c)
		if a.frozen != now.frozen || a.reason != now.reason || !a.until.Equal(now.until) {
			return c
		}
		if b, ok := ws.nextAbsoluteBoundary(x); ok && !b.After(c) {
			quiet = c
		}
		x, at = c, a
		if forever && x.Sub(quiet) > week {
			// Frozen for ever by the weekly windows, and only the reason
			// could change: it repeats every week until an absolute
			// window starts or ends, so skip to just before that.
			b, ok := ws.nextAbsoluteBoundary(x)
			if !ok || b.After(horizon) {
				return time.Time{}
			}
			x = b.Add(-time.Nanosecond)
			at, quiet = ws.answer(x), x
		}
	}
	return x
}

// window is one Freeze, parsed for computing.
type window struct {
	reason string
	// Weekly windows.
	weekly   bool
	loc      *time.Location
	days     [7]bool
	from, to int // minutes after midnight
	// Absolute windows.
	start, end time.Time
}

// span is one occurrence of a window: [start, end).
type span struct {
	start, end time.Time
	window     int // index in windows
}

// windows are an environment's freezes, in config order.
type windows []window

// freezeWindows parses the environment's freezes. A freeze the config
// loader would have refused (only possible from hand-made values) is left
// out.
func (e *Environment) freezeWindows() windows {
	var ws windows
	for i := range e.Freezes {
		if w, ok := e.Freezes[i].window(); ok {
			ws = append(ws, w)
		}
	}
	return ws
}

func (f *Freeze) window() (window, bool) {
	w := window{reason: f.Reason, weekly: f.Weekly()}
	if !w.weekly {
		if f.Start == nil || f.End == nil || !f.End.After(f.Start.Time) {
			return w, false
		}
		w.start, w.end = f.Start.Time, f.End.Time
		return w, true
	}
	w.loc = f.Location
	if w.loc == nil {
		tz := f.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			return w, false
		}
		w.loc = loc
	}
	for _, d := range f.Days {
		wd, err := ParseFreezeDay(d)
		if err != nil {
			return w, false
		}
		w.days[wd] = true
	}
	var err1, err2 error
	w.from, err1 = ParseClock(f.From)
	w.to, err2 = ParseClock(f.To)
	if err1 != nil || err2 != nil || w.from == 24*60 {
		return w, false
	}
	return w, true
}

// week is how far the weekly windows must be followed to see all they do:
// they repeat every seven days of wall-clock time, which is at most a week
// and an hour or two of real time across a change of daylight saving time.
const week = 8 * 24 * time.Hour

// horizon returns the instant past which the answers of ws repeat every
// week: a week after t or after the end of the last absolute window,
// whichever is later.
func (ws windows) horizon(t time.Time) time.Time {
	last := t
	for _, w := range ws {
		if !w.weekly && w.end.After(last) {
			last = w.end
		}
	}
	return last.Add(week)
}

// answer is what FrozenAt says at one instant.
type answer struct {
	frozen bool
	first  int // the first window in force, when frozen
	reason string
	until  time.Time
}

// answer computes FrozenAt over parsed windows.
func (ws windows) answer(t time.Time) answer {
	active := ws.spansAt(t)
	if len(active) == 0 {
		return answer{}
	}
	a := answer{frozen: true, first: active[0].window} // spansAt lists them in config order
	a.reason = ws[a.first].reason
	// The freeze is a chain of windows that each reach the next; it ends
	// at the first gap. Weekly windows alone that reach a week on without
	// a gap cover every week: the freeze never ends.
	horizon := ws.horizon(t)
	weeklySince := t // since when weekly windows alone have covered the chain
	for {
		end := latestEnd(active)
		for _, s := range active {
			if !ws[s.window].weekly {
				weeklySince = end
			}
		}
		if end.Sub(weeklySince) >= week || end.After(horizon) {
			return a
		}
		if active = ws.spansAt(end); len(active) == 0 {
			a.until = end
			return a
		}
	}
}

func latestEnd(spans []span) time.Time {
	end := spans[0].end
	for _, s := range spans[1:] {
		if s.end.After(end) {
			end = s.end
		}
	}
	return end
}

// spansAt returns the occurrences of windows in force at t, in config
// order.
func (ws windows) spansAt(t time.Time) []span {
	var out []span
	for i := range ws {
		for _, s := range ws.spans(i, t, 0) {
			if !s.start.After(t) && t.Before(s.end) {
				out = append(out, s)
			}
		}
	}
	return out
}

// nextCandidate returns the first instant after x at which the answer a
// of x may change: when not frozen, the next start of a window; when
// frozen, the end of the freeze, the end of the first window in force (the
// reason may change), or the start of a window listed before it.
func (ws windows) nextCandidate(x time.Time, a answer) (time.Time, bool) {
	var next time.Time
	found := false
	consider := func(b time.Time) {
		if b.After(x) && (!found || b.Before(next)) {
			next, found = b, true
		}
	}
	starts := len(ws)
	if a.frozen {
		starts = a.first
		if !a.until.IsZero() {
			consider(a.until)
		}
		for _, s := range ws.spansAt(x) {
			if s.window == a.first {
				consider(s.end)
			}
		}
	}
	for i := range starts {
		// A week and a day ahead holds the next occurrence of every
		// weekly window.
		for _, s := range ws.spans(i, x, 8) {
			consider(s.start)
		}
	}
	return next, found
}

// nextAbsoluteBoundary returns the first start or end of an absolute
// window after t.
func (ws windows) nextAbsoluteBoundary(t time.Time) (time.Time, bool) {
	var next time.Time
	found := false
	for _, w := range ws {
		for _, b := range []time.Time{w.start, w.end} {
			if !w.weekly && b.After(t) && (!found || b.Before(next)) {
				next, found = b, true
			}
		}
	}
	return next, found
}

// spans returns the occurrences of window i that start on the local days
// from two days before t's up to days days after it, in order; for an
// absolute window, its one occurrence.
func (ws windows) spans(i int, t time.Time, days int) []span {
	w := ws[i]
	if !w.weekly {
		return []span{{start: w.start, end: w.end, window: i}}
	}
	y, m, d := t.In(w.loc).Date()
	var out []span
	// A window lasts at most a day (and an hour across a change of
	// daylight saving time), so one that started two days before t's
	// local day has ended by t.
	for k := -2; k <= days; k++ {
		day := time.Date(y, m, d+k, 12, 0, 0, 0, time.UTC) // normalised date
		if !w.days[day.Weekday()] {
			continue
		}
		dy, dm, dd := day.Date()
		start := wallTime(w.loc, dy, dm, dd, w.from)
		endDay := dd
		if w.to <= w.from {
			endDay++
		}
		end := wallTime(w.loc, dy, dm, endDay, w.to)
		if end.After(start) { // empty when both ends fall in a skipped hour
			out = append(out, span{start: start, end: end, window: i})
		}
	}
	return out
}

// wallTime returns the instant at which the clocks of loc show minutes
// after midnight on y-m-d (day and minutes may overflow into the next
// days). A time the clocks skip when daylight saving time starts is the
// instant they skip to; a time they show twice when it ends is its first
// occurrence.
func wallTime(loc *time.Location, y int, m time.Month, d, minutes int) time.Time {
	// The wall-clock time read as if it were UTC, minus the zone's offset,
	// is the instant, for one of the offsets in force around it.
	naive := time.Date(y, m, d, 0, minutes, 0, 0, time.UTC)
	var offsets []int
	for _, probe := range []time.Duration{-36 * time.Hour, 36 * time.Hour} {
		_, off := naive.Add(probe).In(loc).Zone()
		if !slices.Contains(offsets, off) {
			offsets = append(offsets, off)
		}
	}
	var best time.Time
	found := false
	for _, off := range offsets {
		t := naive.Add(-time.Duration(off) * time.Second)
		if _, got := t.In(loc).Zone(); got == off && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	if found {
		return best
	}
	// No offset shows this time: it is in the hour skipped at the start of
	// daylight saving time. Read with the offset before the change, it is
	// an instant after the change: the zone that instant is in started at
	// the change.
	start, _ := naive.Add(-time.Duration(offsets[0]) * time.Second).In(loc).ZoneBounds()
	return start
}
