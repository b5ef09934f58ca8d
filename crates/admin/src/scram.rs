//! SCRAM credentials (KIP-554): DescribeUserScramCredentials and
//! AlterUserScramCredentials. The password never leaves the client: it is
//! salted here, `SaltedPassword = Hi(password, salt, iterations)` of RFC
//! 5802 (PBKDF2 with HMAC-SHA-256/512), with a fresh random salt, and only
//! the salt and salted password are sent.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafkit_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafkit_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafkit_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};

use crate::Admin;
use crate::error::{Result, check, invalid};
use crate::wire::wire_enum;

wire_enum!(
    /// A SCRAM mechanism.
    ScramMechanism {
        /// SCRAM-SHA-256.
        Sha256 = 1,
        /// SCRAM-SHA-512.
        Sha512 = 2,
    }
);

/// The fewest iterations Kafka accepts (its `ScramMechanism` minimum).
const MIN_ITERATIONS: i32 = 4096;
/// The most iterations Kafka accepts.
const MAX_ITERATIONS: i32 = 16384;
/// Salt length in bytes: as long as the SHA-256 output, more than the
/// 16 bytes RFC 5802 examples use.
const SALT_LEN: usize = 32;

/// A user's credential for one mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScramCredentialInfo {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The iteration count.
    pub iterations: i32,
}

/// One change for [`Admin::alter_user_scram_credentials`].
#[derive(Clone, PartialEq, Eq)]
pub enum ScramAlteration {
    /// Creates or replaces `user`'s credential for `mechanism`.
    Upsert {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The iteration count (4096-16384).
        iterations: i32,
        /// The password, salted on the client and never sent.
        password: String,
    },
    /// Deletes `user`'s credential for `mechanism`.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

impl std::fmt::Debug for ScramAlteration {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramAlteration::Upsert {
                user,
                mechanism,
                iterations,
                ..
            } => f
                .debug_struct("Upsert")
                .field("user", user)
                .field("mechanism", mechanism)
                .field("iterations", iterations)
                .finish_non_exhaustive(),
            ScramAlteration::Delete { user, mechanism } => f
                .debug_struct("Delete")
                .field("user", user)
                .field("mechanism", mechanism)
                .finish(),
        }
    }
}

/// `Hi(password, salt, iterations)` (RFC 5802): PBKDF2 with the mechanism's HMAC.
pub(crate) fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: i32,
) -> Result<Vec<u8>> {
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(invalid(format!(
            "SCRAM iterations must be within {MIN_ITERATIONS}-{MAX_ITERATIONS}, not {iterations}"
        )));
    }
    let rounds = iterations as u32;
    Ok(match mechanism {
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password, salt, rounds).to_vec()
        }
        ScramMechanism::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<sha2::Sha512, 64>(password, salt, rounds).to_vec()
        }
        ScramMechanism::Unknown(code) => {
            return Err(invalid(format!("unknown SCRAM mechanism {code}")));
        }
    })
}

impl Admin {
    /// The SCRAM credentials of `users` (`None`: every user that has one).
    /// One result per user.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// for (user, creds) in admin.describe_user_scram_credentials(Some(&["alice"])).await? {
    ///     println!("{user}: {:?}", creds?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: safe (reads only).
    #[tracing::instrument(name = "admin.describe_user_scram_credentials", skip(self))]
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
    ) -> Result<BTreeMap<String, Result<Vec<ScramCredentialInfo>>>> {
        let request = DescribeUserScramCredentialsRequest {
            users: users.map(|us| {
                us.iter()
                    .map(|u| UserName {
                        name: u.to_string(),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
        let response = self
            .read_any(|conn| {
                let request = request.clone();
                async move {
                    let response = conn.request(request).await?;
                    check(response.error_code, response.error_message.as_deref())?;
                    Ok(response)
                }
            })
            .await?;
        Ok(response
            .results
            .into_iter()
            .map(|r| {
                let result = check(r.error_code, r.error_message.as_deref()).map(|()| {
                    r.credential_infos
                        .into_iter()
                        .map(|c| ScramCredentialInfo {
                            mechanism: ScramMechanism::from_code(c.mechanism),
                            iterations: c.iterations,
                        })
                        .collect()
                });
                (r.user, result)
            })
            .collect())
    }

    /// Creates, replaces or deletes SCRAM credentials. Passwords are salted
    /// here with a random salt and never sent. One result per user.
    ///
    /// ```no_run
    /// # async fn example(admin: kafkit_admin::Admin) -> kafkit_admin::Result<()> {
    /// use kafkit_admin::{ScramAlteration, ScramMechanism};
    /// let alice = ScramAlteration::Upsert {
    ///     user: "alice".into(), mechanism: ScramMechanism::Sha512, iterations: 8192,
    ///     password: "alice-secret".into(),
    /// };
    /// admin.alter_user_scram_credentials(&[alice]).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Cancel safety: not safe; dropped, some credentials may have changed.
    #[tracing::instrument(name = "admin.alter_user_scram_credentials", skip(self))]
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: &[ScramAlteration],
    ) -> Result<BTreeMap<String, Result<()>>> {
        let mut request = AlterUserScramCredentialsRequest::default();
        for a in alterations {
            match a {
                ScramAlteration::Upsert {
                    user,
                    mechanism,
                    iterations,
                    password,
                } => {
                    let mut salt = [0u8; SALT_LEN];
                    getrandom::fill(&mut salt)
                        .map_err(|e| invalid(format!("no randomness for the SCRAM salt: {e}")))?;
                    let salted =
                        salted_password(*mechanism, password.as_bytes(), &salt, *iterations)?;
                    request.upsertions.push(ScramCredentialUpsertion {
                        name: user.clone(),
                        mechanism: mechanism.code(),
                        iterations: *iterations,
                        salt: Bytes::copy_from_slice(&salt),
                        salted_password: Bytes::from(salted),
                        ..Default::default()
                    });
                }
                ScramAlteration::Delete { user, mechanism } => {
                    request.deletions.push(ScramCredentialDeletion {
                        name: user.clone(),
                        mechanism: mechanism.code(),
                        ..Default::default()
                    })
                }
            }
        }
        let response = self
            .write(
                || self.any_conn(),
                |conn| {
                    let request = request.clone();
                    async move { conn.request(request).await }
                },
            )
            .await?;
        Ok(response
            .results
            .into_iter()
            .map(|r| {
                let result = check(r.error_code, r.error_message.as_deref());
                (r.user, result)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn salted_passwords_match_pbkdf2_vectors() {
        // PBKDF2-HMAC-SHA256("password", "salt", 4096): the widely published vector.
        let sha256 = salted_password(ScramMechanism::Sha256, b"password", b"salt", 4096).unwrap();
        assert_eq!(
            hex(&sha256),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        // Cross-checked with Python's hashlib.pbkdf2_hmac("sha512", b"pencil", b"salt", 4096).
        let sha512 = salted_password(ScramMechanism::Sha512, b"pencil", b"salt", 4096).unwrap();
        assert_eq!(
            hex(&sha512),
            "2cfe3a1c151662b1ea49d13f595674a1c666add70df15d3d02254e9905993878\
             261da7407fd11c2fee4b0a30df5154b1a752f86a13380ddd4bdd9a7c958ec769"
        );
    }

    #[test]
    fn iterations_outside_kafkas_bounds_are_refused() {
        assert!(salted_password(ScramMechanism::Sha256, b"p", b"s", 4095).is_err());
        assert!(salted_password(ScramMechanism::Sha256, b"p", b"s", 16385).is_err());
        assert!(salted_password(ScramMechanism::Unknown(9), b"p", b"s", 4096).is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let a = ScramAlteration::Upsert {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha256,
            iterations: 4096,
            password: "hunter2".into(),
        };
        let shown = format!("{a:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
