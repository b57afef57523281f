package sqlite

// Temporary: replaced by the real implementation.

import (
	"context"
	"errors"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

var errLicensesTODO = errors.New("sqlite: licenses not implemented yet")

var _ = time.Now

func (s *Store) LicenseCode(ctx context.Context, code string, test bool) (store.LicenseCode, error) {
	return store.LicenseCode{}, errLicensesTODO
}
func (s *Store) LicenseDevices(ctx context.Context, code string, test bool) ([]store.LicenseDevice, error) {
	return nil, errLicensesTODO
}
func (s *Store) LicenseGrant(ctx context.Context, kind store.GrantKind, key string) (store.LicenseGrant, error) {
	return store.LicenseGrant{}, errLicensesTODO
}
func (s *Store) LicenseGrantByID(ctx context.Context, id int64) (store.LicenseGrant, error) {
	return store.LicenseGrant{}, errLicensesTODO
}
func (s *Store) LicenseGrantByInstance(ctx context.Context, kind store.GrantKind, instanceID string) (store.LicenseGrant, error) {
	return store.LicenseGrant{}, errLicensesTODO
}
func (s *Store) LicenseCodes(ctx context.Context, f store.LicenseCodeFilter) ([]store.LicenseCode, error) {
	return nil, errLicensesTODO
}
func (s *Store) LicenseEvents(ctx context.Context, code string, test bool, limit int) ([]store.LicenseEvent, error) {
	return nil, errLicensesTODO
}
func (s *Store) LicenseGrants(ctx context.Context, f store.LicenseGrantFilter) ([]store.LicenseGrant, error) {
	return nil, errLicensesTODO
}
func (s *Store) InsertLicenseUpload(ctx context.Context, u store.LicenseUpload) (int64, error) {
	return 0, errLicensesTODO
}
func (s *Store) LicenseUploads(ctx context.Context, grantID int64) ([]store.LicenseUpload, error) {
	return nil, errLicensesTODO
}
func (s *Store) UnreportedLicenseDevices(ctx context.Context, limit int) ([]store.LicenseDevice, error) {
	return nil, errLicensesTODO
}
func (s *Store) MarkLicenseDevicesReported(ctx context.Context, devices []store.LicenseDevice, at time.Time) error {
	return errLicensesTODO
}
func (s *Store) LicenseKeys(ctx context.Context) ([]store.LicenseKey, error) {
	return nil, errLicensesTODO
}
func (s *Store) InsertLicenseKey(ctx context.Context, k store.LicenseKey) (inserted bool, err error) {
	return false, errLicensesTODO
}
func (t *tx) LicenseCode(ctx context.Context, code string, test bool) (store.LicenseCode, error) {
	return store.LicenseCode{}, errLicensesTODO
}
func (t *tx) LicenseDevices(ctx context.Context, code string, test bool) ([]store.LicenseDevice, error) {
	return nil, errLicensesTODO
}
func (t *tx) LicenseGrant(ctx context.Context, kind store.GrantKind, key string) (store.LicenseGrant, error) {
	return store.LicenseGrant{}, errLicensesTODO
}
func (t *tx) LicenseGrantByID(ctx context.Context, id int64) (store.LicenseGrant, error) {
	return store.LicenseGrant{}, errLicensesTODO
}
func (t *tx) LicenseGrantByInstance(ctx context.Context, kind store.GrantKind, instanceID string) (store.LicenseGrant, error) {
	return store.LicenseGrant{}, errLicensesTODO
}
func (t *tx) InsertLicenseCode(ctx context.Context, c store.LicenseCode) (inserted bool, err error) {
	return false, errLicensesTODO
}
func (t *tx) UpdateLicenseCode(ctx context.Context, c store.LicenseCode) error {
	return errLicensesTODO
}
func (t *tx) InsertLicenseEvent(ctx context.Context, e store.LicenseEvent) (int64, error) {
	return 0, errLicensesTODO
}
func (t *tx) UpsertLicenseDevice(ctx context.Context, d store.LicenseDevice) (inserted bool, err error) {
	return false, errLicensesTODO
}
func (t *tx) InsertLicenseGrant(ctx context.Context, g store.LicenseGrant) (id int64, inserted bool, err error) {
	return 0, false, errLicensesTODO
}
func (t *tx) UpdateLicenseGrant(ctx context.Context, g store.LicenseGrant) error {
	return errLicensesTODO
}
