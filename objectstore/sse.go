package objectstore

import "fmt"

// SSEMode names how an S3 service encrypts the objects it stores.
type SSEMode string

const (
	// SSENone asks for nothing: the bucket's default encryption, if any,
	// applies.
	SSENone SSEMode = ""
	// SSES3 asks for SSE-S3: keys managed by the service
	// (x-amz-server-side-encryption: AES256).
	SSES3 SSEMode = "s3"
	// SSEKMS asks for SSE-KMS: keys held by the service's KMS
	// (x-amz-server-side-encryption: aws:kms), optionally a named one.
	SSEKMS SSEMode = "kms"
)

// SSE is the server-side encryption an S3 backend requests on every write.
// The zero value requests none. Reads need no parameters: the service
// decrypts SSE-S3 and SSE-KMS objects for any caller allowed to read them
// (and, for SSE-KMS, to use the key).
type SSE struct {
	Mode SSEMode
	// KMSKeyID names the KMS key (an id, ARN or alias on AWS, a key name on
	// MinIO) when Mode is SSEKMS; empty means the service's default key.
	KMSKeyID string
}

// MaxKMSKeyIDLen bounds KMSKeyID: an AWS key ARN is about 80 bytes, an
// alias ARN at most 300.
const MaxKMSKeyIDLen = 2048

// Validate reports a mode this package does not know, or a key id given
// without SSE-KMS.
func (s SSE) Validate() error {
	switch s.Mode {
	case SSENone, SSES3:
		if s.KMSKeyID != "" {
			return fmt.Errorf("a KMS key id needs server-side encryption mode %q, not %q", SSEKMS, s.Mode)
		}
	case SSEKMS:
		if len(s.KMSKeyID) > MaxKMSKeyIDLen {
			return fmt.Errorf("KMS key id is %d bytes, over %d", len(s.KMSKeyID), MaxKMSKeyIDLen)
		}
		for _, r := range s.KMSKeyID {
			if r <= ' ' || r == 0x7f {
				return fmt.Errorf("KMS key id %q contains %U", s.KMSKeyID, r)
			}
		}
	default:
		return fmt.Errorf("unknown server-side encryption mode %q (known: %q, %q)", s.Mode, SSES3, SSEKMS)
	}
	return nil
}
