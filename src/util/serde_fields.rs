//! The field names a `#[derive(Deserialize)]` struct accepts, read from the derive itself.
//!
//! A derived `Deserialize` hands its list of known fields to `Deserializer::deserialize_struct`;
//! that same list is what `#[serde(deny_unknown_fields)]` checks keys against. [`struct_fields`]
//! runs the derive against a probe deserializer that records the list and stops. It is used to
//! list every configuration key (so a test can check that each one is documented) without
//! keeping a second list by hand.

use serde::de::{Deserialize, Deserializer, Error as _, Visitor};

/// The field names of `T` as its derived `Deserialize` knows them, or an empty list when `T`
/// is not deserialized as a struct with named fields.
pub fn struct_fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields = None;
    // The probe always ends deserialization with an error: only the recorded list matters.
    let _ = T::deserialize(FieldProbe(&mut fields));
    fields.unwrap_or(&[])
}

struct FieldProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldProbe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(Self::Error::custom("field probe: not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(Self::Error::custom("field probe: fields recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        first: u32,
        #[serde(rename = "second_name")]
        second: Option<String>,
    }

    #[test]
    fn lists_the_fields_of_a_struct_as_spelled_in_the_input() {
        assert_eq!(struct_fields::<Sample>(), ["first", "second_name"]);
    }

    #[test]
    fn a_non_struct_has_no_fields() {
        assert!(struct_fields::<u64>().is_empty());
        assert!(struct_fields::<Vec<String>>().is_empty());
    }
}
