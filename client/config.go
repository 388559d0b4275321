package client

import (
	"context"
	"net/http"

	"github.com/deploydb/deploydb"
)

// ConfigStatus returns what the server says of its configuration: the
// checksum, directory and files of the one in force, when it was loaded,
// and the outcome of the last attempt to reload it.
func (c *Client) ConfigStatus(ctx context.Context) (*deploydb.ConfigStatus, error) {
	var out deploydb.ConfigStatus
	if err := c.do(ctx, http.MethodGet, "/api/config", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReloadConfig asks the server to load its configuration directory again
// and returns the status of the configuration then in force. Returns
// EINVALID, with every problem in Fields ("file:line: field" and message),
// when the directory does not load: the server keeps the configuration it
// had.
func (c *Client) ReloadConfig(ctx context.Context) (*deploydb.ConfigStatus, error) {
	var out deploydb.ConfigStatus
	if err := c.do(ctx, http.MethodPost, "/api/config/reload", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
