"""Renders a CloudFormation template with parameters, the way CloudFormation would resolve it.

Enough of CloudFormation for infra/'s templates, to check what a deployment would really create:
parameters (defaults, AllowedPattern, AllowedValues, MinValue/MaxValue, CommaDelimitedList),
Rules (an assertion that fails raises), Conditions, resources whose Condition is false dropped,
`AWS::NoValue` removed, and the intrinsics Ref, Fn::Sub, Fn::If, Fn::Join, Fn::Select,
Fn::GetAtt, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::EachMemberEquals and Condition. A Ref to a
resource gives `<LogicalId>`; Fn::GetAtt gives the attributes the templates use, built from
`physical_names` (a bucket's name, a distribution's id).

The template is read with cfn-lint's own decoder (it knows the short-form tags).
"""
import re

from cfnlint.decode import decode

REGION = "eu-west-1"
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "cairn-test",
}


class NoValue:
    """AWS::NoValue: the property or list item disappears."""


NO_VALUE = NoValue()


class InvalidParameter(ValueError):
    pass


class RuleFailed(ValueError):
    pass


def load(path):
    template, matches = decode(path)
    if matches:
        raise ValueError(f"{path}: {matches}")
    return template


class Rendered:
    def __init__(self, path, params, physical_names=None):
        self.template = load(path)
        self.physical = {"Distribution": "E2CAIRNTEST", **(physical_names or {})}
        self.params = self._parameters(params)
        self._check_rules()
        self.conditions = {}
        for name in self.template.get("Conditions", {}):
            self.condition(name)
        self.resources = {
            name: self.resolve(resource)
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
        self.outputs = {
            name: self.resolve(output["Value"])
            for name, output in self.template.get("Outputs", {}).items()
            if "Condition" not in output or self.condition(output["Condition"])
        }

    # ---- parameters and rules

    def _parameters(self, given):
        declared = self.template.get("Parameters", {})
        unknown = set(given) - set(declared)
        if unknown:
            raise InvalidParameter(f"not parameters of the template: {sorted(unknown)}")
        out = {}
        for name, p in declared.items():
            if name in given:
                value = str(given[name])
            elif "Default" in p:
                value = str(p["Default"])
            else:
                raise InvalidParameter(f"{name} is required")
            kind = p["Type"]
            values = value.split(",") if kind == "CommaDelimitedList" else [value]
            for v in values:
                if "AllowedPattern" in p and not re.fullmatch(p["AllowedPattern"], v):
                    raise InvalidParameter(f"{name}={v!r} does not match {p['AllowedPattern']}")
                if "AllowedValues" in p and v not in [str(a) for a in p["AllowedValues"]]:
                    raise InvalidParameter(f"{name}={v!r} is not one of {p['AllowedValues']}")
                if kind == "Number":
                    n = float(v)
                    if "MinValue" in p and n < float(p["MinValue"]):
                        raise InvalidParameter(f"{name}={v} is below {p['MinValue']}")
                    if "MaxValue" in p and n > float(p["MaxValue"]):
                        raise InvalidParameter(f"{name}={v} is above {p['MaxValue']}")
            out[name] = values if kind == "CommaDelimitedList" else value
        return out

    def _check_rules(self):
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            for a in rule["Assertions"]:
                if not self.resolve(a["Assert"]):
                    raise RuleFailed(f"{name}: {a.get('AssertDescription', '')}")

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    # ---- intrinsics

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        if name in self.template["Resources"]:
            return f"<{name}>"
        raise KeyError(f"Ref to unknown {name}")

    def get_att(self, logical, attr):
        if self.template["Resources"][logical]["Type"] == "AWS::S3::Bucket":
            bucket = self.ref(logical)
            return {
                "Arn": f"arn:aws:s3:::{bucket}",
                "RegionalDomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
            }[attr]
        return f"<{logical}.{attr}>"

    def sub(self, text, variables):
        def one(m):
            name = m.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".")[0] in self.template["Resources"]:
                return str(self.get_att(*name.split(".", 1)))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(i) for i in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    text, variables = arg
                    return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
                return self.sub(arg, {})
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attr)
            if key == "Fn::Join":
                sep, values = arg
                return sep.join(str(v) for v in self.resolve(values))
            if key == "Fn::Select":
                index, values = arg
                return self.resolve(values)[int(self.resolve(index))]
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Fn::EachMemberEquals":
                values, want = (self.resolve(x) for x in arg)
                return all(v == want for v in values)
            if key.startswith("Fn::"):
                raise NotImplementedError(key)
        out = {}
        for k, v in node.items():
            v = self.resolve(v)
            if v is not NO_VALUE:
                out[k] = v
        return out

    # ---- lookups

    def props(self, logical):
        return self.resources[logical]["Properties"]

    def statements(self, logical):
        """The statements of an IAM policy resource, by Sid."""
        doc = self.props(logical)["PolicyDocument"]
        return {s.get("Sid", str(i)): s for i, s in enumerate(doc["Statement"])}


def actions(statement):
    a = statement["Action"]
    return set([a] if isinstance(a, str) else a)


def resources(statement):
    r = statement["Resource"]
    return [r] if isinstance(r, str) else list(r)
