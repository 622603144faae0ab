//! A private key given as a JWK (RFC 7517/7518) for the SMART Backend Services client
//! assertion: RSA (`kty` `RSA` with its CRT parameters) or EC P-384 (`kty` `EC`, `crv`
//! `P-384`). jsonwebtoken takes keys as PEM or DER only, so the JWK's components are written
//! as the DER it reads: PKCS#1 `RSAPrivateKey` for RSA, PKCS#8 with an RFC 5915
//! `ECPrivateKey` (public key included, as ring requires) for EC.
//!
//! A file holding a JWK Set (`{"keys": [...]}`) is accepted when it has exactly one private
//! key. Nothing here logs or shows key material.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;

/// The key read from a JWK, its algorithm, and the JWK's `kid` when it has one.
pub struct JwkKey {
    pub key: EncodingKey,
    pub algorithm: Algorithm,
    pub kid: Option<String>,
}

/// Whether the file's text looks like JSON (a JWK or a JWK Set) rather than PEM.
pub fn looks_like_jwk(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// The private key of a JWK or of a JWK Set of one private key; the error says why not
/// (never with key material).
pub fn from_jwk(bytes: &[u8]) -> Result<JwkKey, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let jwk = match v.get("keys").and_then(Value::as_array) {
        Some(keys) => {
            let private: Vec<&Value> = keys.iter().filter(|k| k.get("d").is_some()).collect();
            match private.as_slice() {
                [one] => *one,
                [] => return Err("the JWK Set has no private key (no \"d\")".into()),
                _ => return Err("the JWK Set has more than one private key".into()),
            }
        }
        None => &v,
    };
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let text = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("the JWK has no \"{name}\""))?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("the JWK's \"{name}\" is not base64url"))
    };
    let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
    let (algorithm, key) = match jwk.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            // RFC 8017 A.1.2: version 0 (two primes), n, e, d, p, q, dP, dQ, qInv.
            let mut body = integer(&[0]);
            for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
                body.extend(integer(&field(name)?));
            }
            (
                Algorithm::RS384,
                EncodingKey::from_rsa_der(&tlv(0x30, &body)),
            )
        }
        Some("EC") => {
            let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or("");
            if crv != "P-384" {
                return Err(format!("the JWK's curve is {crv:?}, not P-384 (ES384)"));
            }
            let (d, x, y) = (field("d")?, field("x")?, field("y")?);
            if d.len() != 48 || x.len() != 48 || y.len() != 48 {
                return Err("the JWK's P-384 \"d\", \"x\" and \"y\" must be 48 bytes each".into());
            }
            let mut point = vec![0x04];
            point.extend(&x);
            point.extend(&y);
            // RFC 5915: version 1, privateKey, [1] publicKey (the [0] parameters are in the
            // PKCS#8 algorithm identifier).
            let mut ec = integer(&[1]);
            ec.extend(tlv(0x04, &d));
            ec.extend(tlv(0xa1, &bit_string(&point)));
            let ec_private_key = tlv(0x30, &ec);
            // RFC 5208: version 0, AlgorithmIdentifier { id-ecPublicKey, secp384r1 }, key.
            let mut alg = tlv(0x06, ID_EC_PUBLIC_KEY);
            alg.extend(tlv(0x06, SECP384R1));
            let mut info = integer(&[0]);
            info.extend(tlv(0x30, &alg));
            info.extend(tlv(0x04, &ec_private_key));
            (
                Algorithm::ES384,
                EncodingKey::from_ec_der(&tlv(0x30, &info)),
            )
        }
        other => {
            return Err(format!(
                "the JWK's kty is {:?}, not RSA or EC",
                other.unwrap_or("")
            ))
        }
    };
    Ok(JwkKey {
        key,
        algorithm,
        kid,
    })
}

/// 1.2.840.10045.2.1 (id-ecPublicKey).
const ID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.3.132.0.34 (secp384r1, P-384).
const SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of an unsigned big-endian number.
fn integer(unsigned: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = unsigned.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    tlv(0x02, &content)
}

/// A DER BIT STRING with no unused bits.
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = vec![0];
    content.extend_from_slice(bytes);
    tlv(0x03, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(integer(&[0]), vec![0x02, 1, 0]);
        assert_eq!(integer(&[0, 0, 5]), vec![0x02, 1, 5]);
        assert_eq!(integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
    }

    #[test]
    fn refuses_what_is_not_a_usable_private_jwk() {
        let err = |text: &str| from_jwk(text.as_bytes()).err().unwrap_or_default();
        assert!(err(r#"{"kty":"oct","k":"AAAA"}"#).contains("not RSA or EC"));
        assert!(err(r#"{"kty":"EC","crv":"P-256","x":"","y":"","d":""}"#).contains("P-384"));
        assert!(err(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#).contains("\"d\""));
        assert!(err(r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#).contains("no private"));
        assert!(looks_like_jwk(b"  \n{\"kty\":\"RSA\"}"));
        assert!(!looks_like_jwk(b"-----BEGIN PRIVATE KEY-----"));
    }
}
