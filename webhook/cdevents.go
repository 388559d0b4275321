package webhook

import (
	"fmt"

	"github.com/deploydb/deploydb"
)

// cdevent returns the CDEvent of change c and its CloudEvents headers.
func cdevent(c Change) ([]byte, []deploydb.HookHeader, error) {
	return nil, nil, fmt.Errorf("no CDEvent for %s yet", c.Event.Type)
}
