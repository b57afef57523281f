// Package sdkcheck proves koobridge's APIG signer (protocol/sign) against
// Huawei's official Go SDK signer. It is a separate module so that the 46 MB
// SDK stays out of the main module's dependencies; it holds only a test.
package sdkcheck
