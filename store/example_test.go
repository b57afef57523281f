package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/koobridge/koobridge/store"
)

// Open an SQLite database in a file, creating it and its schema, and check
// that it answers.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "koobridge-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "koobridge.db"), store.WithOpTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	if err := db.Ping(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("database ready")
	// Output: database ready
}

// Show where the database is without showing its password.
func ExampleRedactDSN() {
	fmt.Println(store.RedactDSN("postgres://koobridge:s3cret@db.example:5432/koobridge?sslmode=require"))
	fmt.Println(store.RedactDSN("/var/lib/koobridge/koobridge.db"))
	// Output:
	// postgres://koobridge:xxxxx@db.example:5432/koobridge?sslmode=require
	// /var/lib/koobridge/koobridge.db
}
