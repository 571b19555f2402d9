package ui

import "embed"

// distFS holds the front end built from web/ by `make web` (committed, so a
// build needs nothing but Go).
//
//go:embed all:dist
var distFS embed.FS
