"""Built-in forms (dues, theme day sign-in, 三会一课 records, work logs, volunteer service) and
``load_forms``, which overlays ``[[forms]]`` from the config.

A config entry whose ``key`` names a built-in form is merged into it key by key (so
``{key = "dues", keywords = [...]}`` only changes the keywords; giving ``fields`` replaces all
fields); any other key adds a new form, e.g. a 捐款 drive with one money field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from bot.errors import ConfigError
from bot.forms.spec import FieldSpec, FieldType, FormSpec

COMMITTEE_ROLES = ["书记", "副书记", "委员"]

_DUES = FormSpec(
    key="dues",
    name="党费",
    keywords=["党费", "交党费", "缴党费", "缴纳党费", "交纳党费", "党费缴纳", "已交党费", "交了党费",
              "已缴党费", "交了", "已交", "已缴", "缴了", "已缴纳", "已交纳", "缴纳", "交纳"],
    fields=[
        FieldSpec(key="amount", label="党费金额", type=FieldType.MONEY, prompt="请输入本月交纳的党费金额，例如：50 或 50.5",
                  min_value=Decimal("0.01"), keywords=["金额", "党费"]),
    ],
    private=True,
    ledger="党费收缴登记表",
    description="按月交纳党费；金额只在私聊中回显。",
)  # fmt: skip

_THEME_DAY = FormSpec(
    key="theme_day",
    name="主题党日签到",
    keywords=["主题党日", "签到", "到", "已到", "已签到", "报到", "请假", "线上"],
    fields=[
        FieldSpec(key="attendance", label="签到", type=FieldType.ATTENDANCE,
                  prompt="请回复：到、线上 或 请假加原因，例如：请假 出差"),
    ],
    ledger="主题党日活动记录",
    description="主题党日活动签到：到、线上参加或请假（需说明原因）。",
)  # fmt: skip

_MEETING = FormSpec(
    key="meeting",
    name="三会一课纪实",
    keywords=["三会一课", "三会一课纪实", "会议记录", "会议纪实", "会议纪要"],
    fields=[
        FieldSpec(key="meeting_type", label="会议类型", type=FieldType.CHOICE, keywords=["会议类型", "类型", "会议名称"],
                  choices={"branch_general": ["支部党员大会", "党员大会", "大会"],
                           "branch_committee": ["支委会", "支部委员会", "支委会议", "支部委员会会议"],
                           "group": ["党小组会", "小组会", "党小组会议", "党小组"],
                           "lecture": ["党课", "讲党课", "专题党课"]}),
        FieldSpec(key="date", label="会议日期", type=FieldType.DATE, keywords=["日期", "时间", "会议时间", "会议日期"]),
        FieldSpec(key="place", label="会议地点", type=FieldType.TEXT, example="三楼会议室", max_length=100,
                  keywords=["地点", "地址", "会议地点", "会场"]),
        FieldSpec(key="host", label="主持人", type=FieldType.TEXT, example="张三", max_length=50,
                  keywords=["主持人", "主持"]),
        FieldSpec(key="topic", label="会议议题", type=FieldType.TEXT, example="学习党章、讨论发展党员", max_length=500,
                  keywords=["议题", "会议议题", "主题", "会议主题", "会议内容", "内容"]),
        FieldSpec(key="attendees", label="参会人员", type=FieldType.MEMBERS,
                  keywords=["参会人员", "参加人员", "出席人员", "到会人员", "参会", "出席", "参加"]),
        FieldSpec(key="absentees", label="缺席人员及原因", type=FieldType.TEXT, required=False, example="李四（出差）",
                  keywords=["缺席人员及原因", "缺席人员", "缺席", "请假人员", "请假"]),
        FieldSpec(key="resolutions", label="会议决议", type=FieldType.TEXT, required=False, max_length=1000,
                  example="同意接收张三为预备党员", keywords=["会议决议", "决议", "决定", "议定事项"]),
    ],
    roles=COMMITTEE_ROLES,
    ledger="三会一课记录",
    description="支部党员大会、支委会、党小组会、党课的会议纪实。",
)  # fmt: skip

_WORK_LOG = FormSpec(
    key="work_log",
    name="工作日志",
    keywords=["工作日志", "日志", "驻企日志", "联络员日志"],
    fields=[
        FieldSpec(key="date", label="日期", type=FieldType.DATE, keywords=["日期", "时间"]),
        FieldSpec(key="enterprise", label="走访企业", type=FieldType.TEXT, example="某某科技有限公司", max_length=100,
                  keywords=["走访企业", "企业名称", "企业", "单位"]),
        FieldSpec(key="work", label="工作内容", type=FieldType.TEXT, example="督导复工复产防控措施", max_length=1000,
                  keywords=["工作内容", "内容", "工作"]),
        FieldSpec(key="solved", label="解决问题", type=FieldType.TEXT, required=False, max_length=500,
                  example="协调口罩500个", keywords=["解决问题", "已解决问题", "已解决", "解决"]),
        FieldSpec(key="open_issues", label="待解决问题", type=FieldType.TEXT, required=False, max_length=500,
                  example="员工返岗交通不便", keywords=["待解决问题", "待解决", "存在问题", "问题"]),
    ],
    ledger="驻企联络员工作日志",
    description="驻企联络员每日工作日志。",
)  # fmt: skip

_VOLUNTEER = FormSpec(
    key="volunteer",
    name="志愿服务",
    keywords=["志愿服务", "志愿者服务", "志愿活动", "志愿"],
    fields=[
        FieldSpec(key="date", label="服务日期", type=FieldType.DATE, keywords=["日期", "时间", "服务日期", "活动日期"]),
        FieldSpec(key="activity", label="服务内容", type=FieldType.TEXT, example="社区环境整治", max_length=200,
                  keywords=["活动名称", "服务内容", "活动", "内容", "项目"]),
        FieldSpec(key="hours", label="服务时长（小时）", type=FieldType.DECIMAL, unit="小时", example="2.5",
                  min_value=Decimal("0.5"), max_value=Decimal("24"), keywords=["服务时长", "时长", "小时数", "工时"]),
    ],
    ledger="志愿服务记录",
    description="党员志愿服务记录（日期、内容、时长）。",
)  # fmt: skip

BUILTIN_FORMS: dict[str, FormSpec] = {f.key: f for f in (_DUES, _THEME_DAY, _MEETING, _WORK_LOG, _VOLUNTEER)}


def _entry_error(index: int, entry: Mapping[str, Any], error: ValidationError) -> ConfigError:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(form)'}: {e['msg']}" for e in error.errors()
    )
    return ConfigError(f"forms[{index}] (key={entry.get('key', '?')!r}): {problems}")


def load_forms(config_forms: list[dict[str, Any]]) -> dict[str, FormSpec]:
    """Built-in forms overlaid with the config's ``[[forms]]``; raises ``ConfigError`` naming the entry."""
    forms = dict(BUILTIN_FORMS)
    seen: set[str] = set()
    for index, entry in enumerate(config_forms):
        key = entry.get("key")
        if not isinstance(key, str) or not key:
            raise ConfigError(f'forms[{index}]: every form needs a key, e.g. key = "donation"')
        if key in seen:
            raise ConfigError(f"forms[{index}]: duplicate form key {key!r}")
        seen.add(key)
        base = BUILTIN_FORMS[key].model_dump() if key in BUILTIN_FORMS else {}
        try:
            forms[key] = FormSpec.model_validate({**base, **entry})
        except ValidationError as error:
            raise _entry_error(index, entry, error) from error
    return forms
