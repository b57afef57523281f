// Package protocol is the KooGallery (Huawei Cloud 云商店) wire format for the
// seller side: typed requests and responses for every production interface
// (SaaS V2, SaaS V1, the joint-operation Kit, license codes 2.0, the retired
// license 1.0 guide, online licenses, order notification) and for the Open
// API messages a seller sends (query order, usage push, license activation
// and query, software usage statistics, license upload).
//
// The package does no I/O and imports nothing else from koobridge. It
// decodes, validates and encodes; signatures live in protocol/sign.
//
// Decoding is tolerant where the spec is vague: unknown fields are ignored,
// scalars that arrive as a number where a string is documented (or the
// other way round) are accepted, JSON null counts as absent, and fields
// documented as "JSON text in a string" are also accepted as plain JSON.
// Ambiguous input is refused, not resolved: the request decoders (DecodeV2,
// DecodeLicense, DecodeKit) refuse a body with a key given twice at any
// depth (also apart from letter case), bytes that are not valid UTF-8 or
// escapes that do not decode to it (lone surrogates), a NUL character, or
// a boolean, object or array where a String is documented; ParseQuery does
// the same for query strings. Validation is strict in
// what the spec tables print: mandatory fields, maximum lengths, enums and
// time formats. Lengths are counted in characters (runes), not bytes, because
// the Huawei tables give lengths in characters. Where a table prints no
// length, a generous cap is used (64 for identifiers, 1024 for free text)
// so that absurd input is still rejected.
//
// Use Marshal rather than encoding/json to write replies: KooGallery expects
// non-ASCII text written as \uXXXX escapes.
package protocol
