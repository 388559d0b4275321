package deploydb

import "time"

// Freeze is a window in which an environment activates nothing.
// Placeholder shape: the config issue work fills it in.
type Freeze struct {
	Reason string `json:"reason"`
}

// FrozenAt reports whether the environment is in a freeze window at t, why,
// and when that window ends.
func (e *Environment) FrozenAt(t time.Time) (bool, string, time.Time) {
	return false, "", time.Time{}
}
