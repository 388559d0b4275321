package deploydb

import (
	"strconv"
	"time"
)

// TimeFormat is how DeployDB writes times: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Time is an instant as DeployDB records it: UTC, truncated to the
// millisecond, and written in JSON as TimeFormat.
type Time struct{ time.Time }

// NewTime returns t in UTC truncated to the millisecond.
func NewTime(t time.Time) Time { return Time{t.UTC().Truncate(time.Millisecond)} }

// UnixMilli returns the Time for ms milliseconds since the Unix epoch.
func UnixMilli(ms int64) Time { return Time{time.UnixMilli(ms).UTC()} }

// MarshalJSON writes the time as TimeFormat, or null when it is zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(t.UTC().Format(TimeFormat))), nil
}

// UnmarshalJSON reads any RFC 3339 time, or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Time{}
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return Errorf(EBADREQUEST, "time must be an RFC 3339 string")
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return Errorf(EBADREQUEST, "time %q is not RFC 3339", s)
	}
	*t = NewTime(v)
	return nil
}

// String formats the time as TimeFormat.
func (t Time) String() string { return t.UTC().Format(TimeFormat) }
