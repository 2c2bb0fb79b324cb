//! Placeholder: this step is being written.
