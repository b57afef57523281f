package instance

import (
	"context"
	"errors"
	"fmt"

	"github.com/koobridge/koobridge/internal/store"
)

// An online-license product (license-openapi.md §C) may have no web front
// end: its newInstance reply carries only the instanceId, and its vendor
// answers instance.created without appInfo. Create.AppInfoOptional marks
// such an instance. The mark is an operation record of its own beside the
// instance (key appOptionalKey), written in the transaction that creates
// the instance, so that every later step (a provisioning retry, a repeat
// after a failure, an operator's Reprovision, the release) knows it
// without a column of its own in the instances table.
//
// The record also says whether the vendor holds the instance: it stays
// running until the vendor confirms instance.created and is done from
// then on. An instance with app info shows that by its front-end URL; one
// without has only this record, and it decides whether instance.released
// must be sent (the vendor never hears of a release of an instance it
// never created).

// appOptionalKey is the key of the mark of instance id.
func appOptionalKey(id string) string { return Key("appInfoOptional", id) }

// appOptional reads the mark of instance id: whether the instance may be
// provisioned without app info, and whether the vendor confirmed
// instance.created for it.
func appOptional(ctx context.Context, r store.OperationReader, id string) (optional, confirmed bool, err error) {
	op, err := r.Operation(ctx, appOptionalKey(id))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("instance: read the app-info mark of %s: %w", id, err)
	}
	return true, op.State == store.OperationDone, nil
}

// createdAtVendor reports whether the vendor confirmed instance.created
// for inst: it has app info, or it is marked app-info optional and
// confirmed.
func createdAtVendor(ctx context.Context, r store.OperationReader, inst store.Instance) (bool, error) {
	if inst.AppInfo.FrontEndURL != "" {
		return true, nil
	}
	_, confirmed, err := appOptional(ctx, r, inst.ID)
	return confirmed, err
}

// confirmCreated records, in tx, that the vendor confirmed
// instance.created for an instance marked app-info optional.
func confirmCreated(ctx context.Context, tx store.Tx, id string) error {
	if err := tx.FinishOperation(ctx, appOptionalKey(id), "000000", nil); err != nil {
		return fmt.Errorf("instance: confirm the creation of %s: %w", id, err)
	}
	return nil
}
