//! Locations in a FHIR resource, written as FHIRPath (`Bundle.entry[2].resource.code`).
//!
//! Every finding carries one, so that a GP system can highlight the element concerned. The
//! same location also finds the line and column in the JSON text for parse errors.

use std::fmt;

/// One step of a location: an element name or an index into a repeating element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Field(String),
    Index(usize),
}

/// A FHIRPath location from a resource root, e.g. `ServiceRequest.reasonCode[1].text`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FhirPath {
    root: String,
    steps: Vec<Step>,
}

impl FhirPath {
    /// The root of a resource of type `resource_type`.
    pub fn root(resource_type: &str) -> Self {
        Self {
            root: resource_type.to_string(),
            steps: Vec::new(),
        }
    }

    pub fn field(&self, name: &str) -> Self {
        let mut p = self.clone();
        p.steps.push(Step::Field(name.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.steps.push(Step::Index(i));
        p
    }

    /// Appends the steps of `other` (a path from a resource root) to this path, as when a
    /// resource is found at `Bundle.entry[3].resource`.
    pub fn join(&self, other: &FhirPath) -> Self {
        let mut p = self.clone();
        p.steps.extend(other.steps.iter().cloned());
        p
    }

    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub fn parent(&self) -> Option<Self> {
        let mut p = self.clone();
        p.steps.pop().map(|_| p)
    }
}

/// A location while a resource is walked, borrowed from the walk's own stack: building a
/// [`FhirPath`] (a `String` and a `Vec` of `String`s) for every element visited was most of a
/// walk's allocations, and only the few elements with a finding need one ([`Loc::path`]).
#[derive(Debug, Clone, Copy)]
pub enum Loc<'p> {
    At(&'p FhirPath),
    Field(&'p Loc<'p>, &'p str),
    Index(&'p Loc<'p>, usize),
}

impl Loc<'_> {
    /// The location as a [`FhirPath`].
    pub fn path(&self) -> FhirPath {
        match self {
            Loc::At(p) => (*p).clone(),
            Loc::Field(parent, name) => {
                let mut p = parent.path();
                p.steps.push(Step::Field((*name).to_string()));
                p
            }
            Loc::Index(parent, i) => {
                let mut p = parent.path();
                p.steps.push(Step::Index(*i));
                p
            }
        }
    }

    /// The path of the element `name` below this location.
    pub fn field(&self, name: &str) -> FhirPath {
        let mut p = self.path();
        p.steps.push(Step::Field(name.to_string()));
        p
    }

    /// Whether the location passes through an element named `name`.
    pub fn has_field(&self, name: &str) -> bool {
        match self {
            Loc::At(p) => p
                .steps
                .iter()
                .any(|s| matches!(s, Step::Field(f) if f == name)),
            Loc::Field(parent, n) => *n == name || parent.has_field(name),
            Loc::Index(parent, _) => parent.has_field(name),
        }
    }
}

impl fmt::Display for FhirPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        for step in &self.steps {
            match step {
                // A primitive's extension travels as `_name` in JSON; in FHIRPath it is `name`.
                Step::Field(name) => write!(f, ".{}", name.strip_prefix('_').unwrap_or(name))?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fhirpath() {
        let p = FhirPath::root("Bundle")
            .field("entry")
            .index(3)
            .field("resource")
            .field("subject");
        assert_eq!(p.to_string(), "Bundle.entry[3].resource.subject");
        assert_eq!(
            p.parent().map(|p| p.to_string()).as_deref(),
            Some("Bundle.entry[3].resource")
        );
        assert_eq!(
            FhirPath::root("ServiceRequest")
                .field("_priority")
                .to_string(),
            "ServiceRequest.priority"
        );
        let root = FhirPath::root("Bundle");
        let at = Loc::At(&root);
        let entry = Loc::Field(&at, "entry");
        let third = Loc::Index(&entry, 3);
        let resource = Loc::Field(&third, "resource");
        assert_eq!(
            resource.field("subject"),
            root.field("entry")
                .index(3)
                .field("resource")
                .field("subject")
        );
        assert!(resource.has_field("entry") && !resource.has_field("contained"));
    }
}
