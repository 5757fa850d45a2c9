//! placeholder: the filter lands in its own change.
