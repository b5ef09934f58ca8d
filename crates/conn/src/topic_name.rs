//! Kafka's rules for topic names, checked on the client so that a bad name
//! is a clear error before anything is sent.

/// The longest topic name Kafka accepts (`Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks `name` against Kafka's topic-name rules: 1 to 249 characters of
/// ASCII letters, digits, `.`, `_` and `-`, and neither `.` nor `..`.
/// The error says which rule failed.
///
/// ```
/// assert!(kafkit_conn::validate_topic_name("orders.v2").is_ok());
/// assert!(kafkit_conn::validate_topic_name("").is_err());
/// assert!(kafkit_conn::validate_topic_name("a/b").is_err());
/// ```
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a topic name must not be empty".to_owned());
    }
    if name == "." || name == ".." {
        return Err(format!("a topic cannot be named {name:?}"));
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "topic name of {} characters is longer than Kafka's limit of {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} has {bad:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_legal_names() {
        for name in [
            "a",
            "orders",
            "orders.v2",
            "my_topic-1",
            "__consumer_offsets",
            "...",
        ] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
        assert!(validate_topic_name(&"x".repeat(MAX_TOPIC_NAME_LEN)).is_ok());
    }

    #[test]
    fn rejects_each_rule_with_a_reason() {
        assert!(validate_topic_name("").unwrap_err().contains("empty"));
        assert!(
            validate_topic_name(".")
                .unwrap_err()
                .contains("cannot be named")
        );
        assert!(
            validate_topic_name("..")
                .unwrap_err()
                .contains("cannot be named")
        );
        let long = "x".repeat(MAX_TOPIC_NAME_LEN + 1);
        assert!(validate_topic_name(&long).unwrap_err().contains("249"));
        for bad in ["a b", "a/b", "tópico", "a:b"] {
            assert!(
                validate_topic_name(bad).unwrap_err().contains("only ASCII"),
                "{bad}"
            );
        }
    }
}
