"""Checks of infra/template.yaml that cfn-lint cannot make: the table is the layout the
Rust adapter uses, each function's policy names only the resources that function needs,
the S3-triggered function has bounded retries and a dead-letter destination, and the
API authorizes with Cognito by default."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
KEYS_RS = ROOT / "crates" / "store" / "src" / "aws" / "keys.rs"
DATA = "arn:${AWS::Partition}:s3:::${NamePrefix}-data-${AWS::AccountId}-${AWS::Region}"


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form intrinsics (!Ref, !Sub, !GetAtt, ...) as the
    long form ({"Ref": ...}, {"Fn::Sub": ...})."""


def _intrinsic(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template():
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


def functions(template):
    return {
        name: res
        for name, res in template["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }


def render(resource):
    """A policy resource as comparable text: `Table.Arn`, a Sub string, or a literal."""
    if isinstance(resource, str):
        return resource
    if "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    if "Fn::Sub" in resource:
        return resource["Fn::Sub"]
    if "Ref" in resource:
        return "Ref:" + resource["Ref"]
    raise AssertionError(f"unexpected policy resource {resource!r}")


def statements(function):
    out = []
    for policy in function["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and "Statement" in policy, (
            "policies are inline statements (no broad SAM policy templates)"
        )
        out.extend(policy["Statement"])
    return out


# What each function may touch: (action, resource) pairs, resources rendered as above.
TABLE = "Table.Arn"
INDEXES = "${Table.Arn}/index/*"
ALLOWED = {
    "UploadFunction": {
        ("s3:GetObject", f"{DATA}/raw/*"),
        ("s3:GetObject", f"{DATA}/models/*"),
        ("s3:GetObject", f"{DATA}/seed/*"),
        ("s3:PutObject", f"{DATA}/models/*"),
        ("s3:ListBucket", DATA),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("sqs:SendMessage", "UploadDeadLetterQueue.Arn"),
    },
    "ReviewFunction": {
        ("s3:GetObject", f"{DATA}/raw/*"),
        ("s3:PutObject", f"{DATA}/raw/*"),
        ("s3:GetObject", f"{DATA}/models/*"),
        *{(a, r) for a in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                            "dynamodb:TransactWriteItems"] for r in [TABLE, INDEXES]},
    },
    "DriftApiFunction": {
        (a, r) for a in ["dynamodb:GetItem", "dynamodb:Query"] for r in [TABLE, INDEXES]
    },
    "DriftScheduleFunction": {
        *{(a, r) for a in ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"]
          for r in [TABLE, INDEXES]},
        ("s3:GetObject", f"{DATA}/reports/drift/alerts/*"),
        ("s3:PutObject", f"{DATA}/reports/drift/alerts/*"),
        ("s3:ListBucket", DATA),
        ("sns:Publish", "Ref:DriftAlertTopic"),
    },
}
# The two retrain functions (HTTP and schedule) both dispatch; the schedule also reads a
# completed training job's output and registers the candidate.
ALLOWED["RetrainApiFunction"] = {
    *{("s3:GetObject", f"{DATA}/{p}/*") for p in ["raw", "models", "seed", "snapshots"]},
    ("s3:PutObject", f"{DATA}/snapshots/*"),
    ("s3:ListBucket", DATA),
    *{(a, r) for a in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                        "dynamodb:TransactWriteItems", "dynamodb:ConditionCheckItem"]
      for r in [TABLE, INDEXES]},
    ("dynamodb:DeleteItem", TABLE),
    *{(a, "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/opti-snap-*")
      for a in ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"]},
    ("iam:PassRole", "TrainingRole.Arn"),
}
ALLOWED["RetrainScheduleFunction"] = ALLOWED["RetrainApiFunction"] | {
    ("s3:GetObject", f"{DATA}/training/*"),
    ("s3:PutObject", f"{DATA}/models/*"),
}
# Deletes a function may make, each only under a condition naming the item keys.
DELETES = {"RetrainApiFunction": "RETRAIN_LOCK", "RetrainScheduleFunction": "RETRAIN_LOCK"}


BINARIES = {"upload", "review", "drift", "drift-schedule", "retrain", "retrain-schedule"}


def test_every_function_has_an_allow_list(template):
    assert set(functions(template)) == set(ALLOWED)


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_function_policy_names_only_its_own_resources(template, name):
    granted = set()
    for st in statements(functions(template)[name]):
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for action in actions:
            assert "*" not in action, f"{name}: wildcard action {action}"
            for resource in resources:
                text = render(resource)
                assert text not in ("*", "arn:aws:s3:::*"), f"{name}: wildcard resource"
                granted.add((action, text))
        if "s3:ListBucket" in actions:
            prefixes = st.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            assert prefixes, f"{name}: bucket listing must be limited to its prefixes"
    extra = granted - ALLOWED[name]
    assert not extra, f"{name} is granted more than it needs: {sorted(extra)}"
    missing = ALLOWED[name] - granted
    assert not missing, f"{name} lacks what it needs: {sorted(missing)}"


def test_no_function_may_delete_anything_but_the_retrain_lock(template):
    for name, function in functions(template).items():
        for st in statements(function):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            deletes = [a for a in actions if "Delete" in a]
            if not deletes:
                continue
            assert name in DELETES and deletes == ["dynamodb:DeleteItem"], (name, deletes)
            assert actions == deletes, f"{name}: the delete stands in its own statement"
            keys = st["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
            assert keys == [DELETES[name]], (name, keys)


def test_only_the_retrain_functions_pass_only_the_training_role_to_sagemaker_only(template):
    for name, function in functions(template).items():
        for st in statements(function):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if "iam:PassRole" not in actions:
                continue
            assert name.startswith("Retrain"), name
            assert [render(r) for r in st["Resource"]] == ["TrainingRole.Arn"]
            assert st["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"


def test_training_role_is_for_sagemaker_and_reads_and_writes_only_its_prefixes(template):
    role = template["Resources"]["TrainingRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    granted = set()
    for policy in role["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for a in actions:
                for r in resources:
                    granted.add((a, render(r)))
                    if render(r) == "*":
                        # Only what AWS offers no resource-level permission for.
                        assert a in ("ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"), a
    writes = {r for a, r in granted if a == "s3:PutObject"}
    assert writes == {f"{DATA}/training/*"}
    reads = {r for a, r in granted if a == "s3:GetObject"}
    assert reads == {f"{DATA}/{p}/*" for p in ["snapshots", "models", "seed"]}


def test_drift_alerts_topic_is_published_by_the_drift_schedule_only(template):
    publishers = set()
    for name, function in functions(template).items():
        for st in statements(function):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if "sns:Publish" in actions:
                publishers.add(name)
    assert publishers == {"DriftScheduleFunction"}
    env = functions(template)["DriftScheduleFunction"]["Properties"]["Environment"]["Variables"]
    assert env["OPTI_DRIFT_TOPIC_ARN"] == {"Ref": "DriftAlertTopic"}
    assert "DriftAlertTopicArn" in template["Outputs"]


def test_retrain_is_served_scheduled_and_configured(template):
    fns = functions(template)
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in fns["RetrainApiFunction"]["Properties"]["Events"].values()
    }
    assert routes == {("POST", "/retrain"), ("GET", "/retrain"), ("GET", "/retrain/{job}")}
    events = fns["RetrainScheduleFunction"]["Properties"]["Events"]
    assert events["Check"]["Type"] == "ScheduleV2"
    ended = events["TrainingJobEnded"]
    assert ended["Type"] == "EventBridgeRule"
    pattern = ended["Properties"]["Pattern"]
    assert pattern["detail-type"] == ["SageMaker Training Job State Change"]
    assert pattern["detail"]["TrainingJobName"] == [{"prefix": "opti-snap-"}]
    assert set(pattern["detail"]["TrainingJobStatus"]) == {"Completed", "Failed", "Stopped"}
    # The schedule and a state change must not both register the same candidate.
    assert fns["RetrainScheduleFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1
    for name in ["RetrainApiFunction", "RetrainScheduleFunction"]:
        env = fns[name]["Properties"]["Environment"]["Variables"]
        assert env["OPTI_TRAINING_ROLE_ARN"] == {"Fn::GetAtt": ["TrainingRole", "Arn"]}
        assert "${TrainerRepository}:${TrainerImageTag}" in env["OPTI_TRAINER_IMAGE"]["Fn::Sub"]
    # API Gateway gives an integration at most 30 s.
    assert fns["RetrainApiFunction"]["Properties"].get("Timeout", 29) <= 29


def test_functions_are_rust_cargolambda_on_arm64_al2023(template):
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "provided.al2023"
    assert globals_["Architectures"] == ["arm64"]
    binaries = set()
    for name, function in functions(template).items():
        meta = function["Metadata"]
        assert meta["BuildMethod"] == "rust-cargolambda", name
        binaries.add(meta["BuildProperties"]["Binary"])
        assert "Runtime" not in function["Properties"], f"{name} overrides the runtime"
    assert binaries == BINARIES


def test_binaries_exist_in_the_function_packages():
    cargo = "".join(p.read_text() for p in (ROOT / "functions").glob("*/Cargo.toml"))
    for binary in BINARIES:
        assert f'name = "{binary}"' in cargo, binary


def test_upload_trigger_is_raw_prefix_with_bounded_retries_and_a_dead_letter_queue(template):
    props = functions(template)["UploadFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "S3"
    assert event["Properties"]["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}]
    invoke = props["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == {"Ref": "MaxUploadRetries"}
    assert template["Parameters"]["MaxUploadRetries"]["MaxValue"] <= 2
    assert invoke["DestinationConfig"]["OnFailure"]["Type"] == "SQS"


def test_api_authorizes_every_route_with_the_cognito_user_pool(template):
    auth = template["Resources"]["HttpApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "Cognito"
    jwt = auth["Authorizers"]["Cognito"]["JwtConfiguration"]
    assert "${UserPool}" in jwt["issuer"]["Fn::Sub"]
    groups = {
        res["Properties"]["GroupName"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Cognito::UserPoolGroup"
    }
    assert groups == {"camera", "reviewer", "admin"}, "groups are the service's roles"


def test_drift_is_scheduled_and_served(template):
    fns = functions(template)
    (schedule,) = fns["DriftScheduleFunction"]["Properties"]["Events"].values()
    assert schedule["Type"] == "ScheduleV2"
    paths = {e["Properties"]["Path"] for e in fns["DriftApiFunction"]["Properties"]["Events"].values()}
    assert "/drift/" in paths


def test_table_is_the_layout_of_the_rust_adapter(template):
    rust = KEYS_RS.read_text()
    indexes = re.findall(r'name: "(\w+)",\s*pk: "(\w+)",\s*sk: "(\w+)"', rust)
    assert len(indexes) == 5, indexes
    table = template["Resources"]["Table"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    declared = {
        (g["IndexName"], g["KeySchema"][0]["AttributeName"], g["KeySchema"][1]["AttributeName"])
        for g in table["GlobalSecondaryIndexes"]
    }
    assert declared == set(indexes)
    assert all(g["Projection"]["ProjectionType"] == "ALL" for g in table["GlobalSecondaryIndexes"])


def test_outputs_name_the_api_and_the_site(template):
    assert {"ApiUrl", "SiteUrl"} <= set(template["Outputs"])


def test_training_job_arn_pattern_is_the_name_the_retrain_function_gives_jobs(template):
    retrain = (ROOT / "functions" / "shared" / "src" / "retrain.rs").read_text()
    snapshot = (ROOT / "crates" / "core" / "src" / "snapshot.rs").read_text()
    assert 'format!("opti-{snapshot_id}")' in retrain
    assert 'format!("snap-{}"' in snapshot
    policy = [
        render(r)
        for st in statements(functions(template)["RetrainApiFunction"])
        if "sagemaker:CreateTrainingJob" in st["Action"]
        for r in st["Resource"]
    ]
    assert policy == ["arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/opti-snap-*"]
