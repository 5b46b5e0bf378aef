//! Typed reads with Janus semantics and loud errors: a value that is present but unusable
//! is reported with its file, position and key instead of silently becoming the default.

use crate::error::ConfigError;
use crate::jcfg::Jcfg;
use crate::value::{Position, Value};

pub(crate) struct Reader<'a> {
    cfg: &'a Jcfg,
    file: &'a str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(cfg: &'a Jcfg, file: &'a str) -> Self {
        Reader { cfg, file }
    }

    fn item(&self, cat: &str, key: &str) -> Option<(&'a Value, Option<Position>)> {
        let group = self.cfg.category(cat)?;
        group.get(key).map(|v| (v, group.position(key)))
    }

    pub(crate) fn invalid(&self, cat: &str, key: &str, message: String) -> ConfigError {
        let line_column = self
            .cfg
            .category(cat)
            .and_then(|g| g.position(key))
            .map(|p| (p.line, p.column));
        ConfigError::Invalid {
            file: self.file.to_string(),
            line_column,
            category: cat.to_string(),
            key: key.to_string(),
            message,
        }
    }

    /// A scalar as text; arrays/lists/groups are a type error.
    pub(crate) fn string(&self, cat: &str, key: &str) -> Result<Option<String>, ConfigError> {
        match self.item(cat, key) {
            None => Ok(None),
            Some((v, _)) => v.as_string().map(Some).ok_or_else(|| {
                self.invalid(
                    cat,
                    key,
                    format!("expected a string, found {}", v.kind_name()),
                )
            }),
        }
    }

    pub(crate) fn string_or(
        &self,
        cat: &str,
        key: &str,
        default: &str,
    ) -> Result<String, ConfigError> {
        Ok(self
            .string(cat, key)?
            .unwrap_or_else(|| default.to_string()))
    }

    /// Janus's boolean rule (true iff yes/true/1); only non-scalars are refused.
    pub(crate) fn boolean(&self, cat: &str, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.item(cat, key) {
            None => Ok(default),
            Some((v, _)) => v.as_bool().ok_or_else(|| {
                self.invalid(
                    cat,
                    key,
                    format!("expected a boolean, found {}", v.kind_name()),
                )
            }),
        }
    }

    /// An integer (or a string holding one) that must fit `T`.
    pub(crate) fn int<T>(&self, cat: &str, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: TryFrom<i64> + Bounds,
    {
        Ok(self.int_opt(cat, key)?.unwrap_or(default))
    }

    pub(crate) fn int_opt<T>(&self, cat: &str, key: &str) -> Result<Option<T>, ConfigError>
    where
        T: TryFrom<i64> + Bounds,
    {
        let Some((v, _)) = self.item(cat, key) else {
            return Ok(None);
        };
        let Some(i) = v.as_int() else {
            let shown = v.as_string().map(|s| format!(" {s:?}")).unwrap_or_default();
            return Err(self.invalid(
                cat,
                key,
                format!("expected an integer, found {}{shown}", v.kind_name()),
            ));
        };
        T::try_from(i).map(Some).map_err(|_| {
            self.invalid(
                cat,
                key,
                format!("{i} is out of range ({}..={})", T::MIN, T::MAX),
            )
        })
    }

    /// A comma separated string (`"a,b"`) or an array of scalars; items trimmed, empties
    /// dropped. Janus writes both forms depending on the key.
    pub(crate) fn list(&self, cat: &str, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some((v, _)) = self.item(cat, key) else {
            return Ok(None);
        };
        if let Some(text) = v.as_string() {
            return Ok(Some(split_list(&text)));
        }
        let items = match v {
            Value::Array(items) | Value::List(items) => items,
            other => {
                return Err(self.invalid(
                    cat,
                    key,
                    format!(
                        "expected a comma separated string or an array, found {}",
                        other.kind_name()
                    ),
                ))
            }
        };
        let mut out = Vec::new();
        for item in items {
            match item.as_string() {
                Some(s) => out.extend(split_list(&s)),
                None => {
                    return Err(self.invalid(
                        cat,
                        key,
                        format!("list items must be strings, found {}", item.kind_name()),
                    ))
                }
            }
        }
        Ok(Some(out))
    }

    pub(crate) fn list_or_empty(&self, cat: &str, key: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self.list(cat, key)?.unwrap_or_default())
    }
}

/// Splits Janus's comma lists (`"libjanus_a.so, libjanus_b.so"`).
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Range bounds for error messages.
pub(crate) trait Bounds {
    const MIN: i128;
    const MAX: i128;
}

macro_rules! bounds {
    ($($t:ty),*) => {$(
        impl Bounds for $t {
            const MIN: i128 = <$t>::MIN as i128;
            const MAX: i128 = <$t>::MAX as i128;
        }
    )*};
}
bounds!(u8, u16, u32, u64, i32, i64);
