//go:build !crash

package main

// crashKillsDefault is how many times the crash tests kill the server in
// the normal test run: the short form. Build with -tags crash for the long
// form, or set DEPLOYDB_CRASH_KILLS.
const crashKillsDefault = 5
