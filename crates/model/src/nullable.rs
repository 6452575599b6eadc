use serde::{Deserialize, Deserializer};

/// Reads `null` as the type's default: `"Binds": null` is no binds.
pub fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
