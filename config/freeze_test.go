package config_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploydb/deploydb"
	"github.com/deploydb/deploydb/config"
)

func TestLoad_Freezes(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"environments/integ.yml": `description: Integration
freezes:
  - reason: weekend
    timezone: Europe/Berlin
    days: [fri, Saturday, SUN]
    from: "18:00"
    to: 8:00
  - reason: ${env:WHY}
    days: [mon]
    from: "22:00"
    to: "24:00"
  - reason: year-end
    start: 2025-12-20T00:00:00+01:00
    end: "2026-01-05T08:00:00+01:00"
  - {reason: all day, timezone: America/New_York, days: [wed], from: "00:00", to: "00:00"}
`}))
	cfg, err := config.LoadWith(dir, config.Options{Getenv: func(k string) string { return map[string]string{"WHY": "nightly batch"}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Environments["integ"].Freezes
	for i := range got {
		f := &got[i]
		if f.Weekly() && (f.Location == nil || f.Location.String() != f.TimeZone) {
			t.Errorf("freezes[%d]: location %v, want %s loaded", i, f.Location, f.TimeZone)
		}
		if !f.Weekly() && f.Location != nil {
			t.Errorf("freezes[%d]: absolute freeze with a location %v", i, f.Location)
		}
	}
	tm := func(s string) *deploydb.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		d := deploydb.NewTime(v)
		return &d
	}
	want := []deploydb.Freeze{
		{Reason: "weekend", TimeZone: "Europe/Berlin", Days: []string{"fri", "sat", "sun"}, From: "18:00", To: "08:00"},
		{Reason: "nightly batch", TimeZone: "UTC", Days: []string{"mon"}, From: "22:00", To: "24:00"},
		{Reason: "year-end", Start: tm("2025-12-19T23:00:00Z"), End: tm("2026-01-05T07:00:00Z")},
		{Reason: "all day", TimeZone: "America/New_York", Days: []string{"wed"}, From: "00:00", To: "00:00"},
	}
	ignoreLocation := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Location" }, cmp.Ignore())
	if diff := cmp.Diff(want, got, ignoreLocation); diff != "" {
		t.Errorf("freezes mismatch (-want +got):\n%s", diff)
	}

	// The loaded windows are in force: Friday 2025-06-06 18:00 in Berlin
	// is 16:00 UTC.
	env := cfg.Environments["integ"]
	if frozen, why, until := env.FrozenAt(time.Date(2025, 6, 6, 17, 0, 0, 0, time.UTC)); !frozen || why != "weekend" || !until.Equal(time.Date(2025, 6, 7, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("FrozenAt(Friday evening) = %v %q %s, want frozen for the weekend until Saturday 06:00 UTC", frozen, why, until)
	}
	if frozen, _, _ := cfg.Environments["integ"].FrozenAt(time.Date(2025, 6, 6, 15, 0, 0, 0, time.UTC)); frozen {
		t.Error("frozen on Friday afternoon")
	}
	// An environment without the key has no freezes.
	dir = mustWriteDir(t, baseFiles())
	if got := mustLoad(t, dir).Environments["integ"].Freezes; got == nil || len(got) != 0 {
		t.Errorf("freezes of an environment without any = %#v, want an empty list", got)
	}
}

// TestLoad_FreezeProblems reports every problem of every window, each at
// its line and field.
func TestLoad_FreezeProblems(t *testing.T) {
	t.Parallel()
	dir := mustWriteDir(t, with(map[string]string{"environments/integ.yml": `description: Integration
freezes:
  - reason: fine
    days: [mon]
    from: "09:00"
    to: "10:00"
  - {reason: "", days: [mon, mon, xyz], from: 24:00, to: "7", timezone: Mars/Olympus}
  - reason: both
    days: [mon]
    from: "09:00"
    to: "10:00"
    start: 2025-12-20T00:00:00+01:00
  - reason: nothing
  - start: 2025-12-20
    end: 2025-12-19T00:00:00Z
  - reason: backwards
    start: 2025-12-20T00:00:00Z
    end: 2025-12-19T00:00:00Z
  - days: []
    from: "09:00"
    to: "10:00"
    reason: x
    timezone: Local
    when: never
  - just a string
  - reason: missing
    days: [tue]
  - reason: half
    start: 2025-12-20T00:00:00Z
  - reason: secret zone
    timezone: ${env:TZ}
    days: wed
    from: 9:00
    to: 25:00
`}))
	got := mustProblems(t, dir, func(k string) string { return map[string]string{"TZ": "Hidden/Secret"}[k] })
	p := func(line int, field, msg string) config.Problem {
		return config.Problem{File: "environments/integ.yml", Line: line, Field: field, Message: msg}
	}
	want := []config.Problem{
		p(7, "freezes[1].reason", "must say why the environment is frozen, not be empty"),
		p(7, "freezes[1].timezone", `unknown time zone "Mars/Olympus"; use an IANA name such as "Europe/Berlin", or "UTC"`),
		p(7, "freezes[1].days[1]", `day "mon" is listed twice`),
		p(7, "freezes[1].days[2]", `unknown day "xyz"; valid: mon, tue, wed, thu, fri, sat, sun`),
		p(7, "freezes[1].from", "must be a time of day before 24:00"),
		p(7, "freezes[1].to", `must be a time of day "HH:MM" from "00:00" to "24:00", not "7"`),
		p(12, "freezes[2].start", "a freeze is weekly (days, from, to, timezone) or absolute (start, end), not both"),
		p(13, "freezes[3]", "required: days, from and to for a weekly freeze, or start and end for an absolute one"),
		p(14, "freezes[4].reason", "required: why the environment is frozen, shown to whoever waits"),
		p(14, "freezes[4].start", `must be an RFC 3339 time with a zone, such as "2025-12-24T00:00:00+01:00", not "2025-12-20"`),
		p(18, "freezes[5].end", "must be after start"),
		p(19, "freezes[6].days", "a weekly freeze starts on at least one day"),
		p(23, "freezes[6].timezone", `name the time zone, such as "Europe/Berlin" or "UTC": Local would be the server's own`),
		p(24, "freezes[6].when", `unknown key "when"; valid keys: reason, timezone, days, from, to, start, end`),
		p(25, "freezes[7]", "must be a mapping (key: value), not a string"),
		p(26, "freezes[8].from", `required for a weekly freeze: a time of day, "HH:MM"`),
		p(26, "freezes[8].to", `required for a weekly freeze: a time of day, "HH:MM"`),
		p(28, "freezes[9].end", `required for an absolute freeze: an RFC 3339 time such as "2025-12-24T00:00:00+01:00"`),
		// The zone is shown as written, never as expanded.
		p(31, "freezes[10].timezone", `unknown time zone "${env:TZ}" (expanded); use an IANA name such as "Europe/Berlin", or "UTC"`),
		p(32, "freezes[10].days", "must be a list, not a string"),
		p(34, "freezes[10].to", `must be a time of day "HH:MM" from "00:00" to "24:00", not "25:00"`),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad_FreezesNotAList(t *testing.T) {
	t.Parallel()
	got := mustProblems(t, mustWriteDir(t, with(map[string]string{"environments/integ.yml": "freezes: {reason: x}\n"})), noEnv)
	want := []config.Problem{{File: "environments/integ.yml", Line: 1, Field: "freezes", Message: "must be a list, not a mapping"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
}
