package deploydb

// ConfigStatus describes the configuration a server has in force and its
// last attempt to load one (GET /api/config). It holds no configuration
// value, so it never shows a secret that ${env:NAME} expanded.
type ConfigStatus struct {
	// Checksum, Dir and Files are those of the configuration in force.
	Checksum string       `json:"checksum"`
	Dir      string       `json:"dir"`
	Files    []ConfigFile `json:"files"`
	// LoadedAt is when the configuration in force was loaded.
	LoadedAt Time `json:"loadedAt"`
	// LastError says why the last attempt to reload failed: a summary line,
	// then one line per problem ("file:line: field: message"). It is empty
	// when the last attempt loaded.
	LastError string `json:"lastError"`
	// LastAttemptAt is when the configuration directory was last read,
	// whether it loaded or not.
	LastAttemptAt Time `json:"lastAttemptAt"`
}
