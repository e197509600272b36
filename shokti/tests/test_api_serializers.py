"""ShallowCopiedFieldsMixin: per-instance field copies without DRF's deep copy, and no state shared."""

from rest_framework import serializers

from shokti.api.serializers import ShallowCopiedFieldsMixin


class Body(ShallowCopiedFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=5)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=["a", "b"])


def test_each_instance_binds_its_own_copies_and_the_declared_fields_stay_unbound():
    first, second = Body(data={}), Body(data={})

    assert first.fields["name"] is not second.fields["name"]
    assert first.fields["name"].parent is first and second.fields["name"].parent is second
    assert first.fields["email"].field_name == "email"
    declared = Body._declared_fields["name"]
    assert declared.parent is None and declared.field_name is None


def test_validation_and_errors_are_those_of_the_declared_fields():
    good = Body(data={"name": "abc", "email": "A@Example.com", "kind": "a"})
    assert good.is_valid(), good.errors
    assert good.validated_data == {"name": "abc", "email": "A@Example.com", "kind": "a"}

    bad = Body(data={"name": "toolong", "email": "not-an-email", "kind": "c"})
    assert not bad.is_valid()
    assert set(bad.errors) == {"name", "email", "kind"}
    assert "5" in str(bad.errors["name"][0])
    # The failed instance left nothing behind for the next one.
    assert Body(data={"name": "ok", "kind": "b"}).is_valid()
