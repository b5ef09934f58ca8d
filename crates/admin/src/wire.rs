//! Small enums carried as `int8` codes on the wire, with an `Unknown`
//! variant so a code from a newer broker is kept, not lost.

/// Defines a `Copy` enum over `i8` codes with `from_code`/`code`, keeping
/// unknown codes in `Unknown(i8)`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:expr),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this version of kafkit does not know.
            Unknown(i8),
        }

        impl $name {
            /// The enum for a wire code.
            pub fn from_code(code: i8) -> $name {
                match code {
                    $($code => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }

            /// The wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    wire_enum!(
        /// A test enum.
        Color {
            /// Red.
            Red = 1,
            /// Blue.
            Blue = 3,
        }
    );

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        for code in -2..6 {
            assert_eq!(Color::from_code(code).code(), code);
        }
        assert_eq!(Color::from_code(3), Color::Blue);
        assert_eq!(Color::from_code(2), Color::Unknown(2));
    }
}
