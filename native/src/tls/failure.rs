//! What went wrong in a TLS session, as an ABI code the host can branch on.

use rustls::{CertificateError, Error};

use crate::error::*;

/// The `IOT_E_TLS_*` code for a rustls error.
pub(crate) fn code(error: &Error) -> i32 {
    match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => IOT_E_TLS_UNKNOWN_ISSUER,
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => IOT_E_TLS_NAME_MISMATCH,
        Error::InvalidCertificate(_) => IOT_E_TLS_BAD_CERTIFICATE,
        Error::NoCertificatesPresented => IOT_E_TLS_CERTIFICATE_REQUIRED,
        Error::PeerIncompatible(_) | Error::NoApplicationProtocol => IOT_E_TLS_NO_COMMON_PROTOCOL,
        Error::AlertReceived(_) => IOT_E_TLS_ALERT_RECEIVED,
        Error::DecryptError => IOT_E_TLS_DECRYPT,
        _ => IOT_E_TLS_PROTOCOL,
    }
}
