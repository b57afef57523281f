package licensetoken_test

import "github.com/koobridge/koobridge/internal/store/dbtest"

// dialects are the databases every test runs on.
var dialects = dbtest.Dialects
