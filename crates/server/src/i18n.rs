//! The UI's words, in Simplified Chinese first and English second. The language comes
//! from the `lang` cookie (set by `/lang`), Chinese by default.

use axum::http::HeaderMap;
use domain::{Level, TeamRole};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

/// key, 中文, English
const WORDS: &[(&str, &str, &str)] = &[
    ("app.name", "网格化管理指挥中心", "Grid Management Command Center"),
    ("app.product", "civicgrid 网格化社会治理平台", "civicgrid grid governance platform"),
    ("nav.home", "首页", "Home"),
    ("nav.areas", "区划网格", "Areas & grids"),
    ("nav.map", "网格地图", "Grid map"),
    ("nav.api", "接口文档", "API docs"),
    ("nav.switch", "English", "中文"),
    ("home.title", "辖区概况", "District overview"),
    ("home.lead", "本平台按“区县—街道/乡镇—社区/村—网格”四级管理辖区。下列数字直接来自数据库。", "The district is managed in four levels: district, street/township, community/village, grid. These figures come straight from the store."),
    ("home.browse", "浏览区划与网格", "Browse areas and grids"),
    ("home.open_map", "打开网格地图", "Open the grid map"),
    ("home.empty", "数据库中还没有区划。请用 civicgrid areas import 导入 GeoJSON，或运行 civicgrid demo 生成演示辖区。", "The store has no areas yet. Import GeoJSON with civicgrid areas import, or run civicgrid demo."),
    ("area.code", "编码", "Code"),
    ("area.name", "名称", "Name"),
    ("area.level", "层级", "Level"),
    ("area.parent", "上级", "Parent"),
    ("area.kind", "类型", "Kind"),
    ("area.children", "下级区划", "Sub-areas"),
    ("area.grid_count", "网格数", "Grids"),
    ("area.team", "网格队伍", "Grid team"),
    ("area.no_team", "尚未登记队伍成员。", "No team members recorded."),
    ("area.no_children", "没有下级区划。", "No sub-areas."),
    ("area.filter", "按名称或编码筛选…", "Filter by name or code…"),
    ("area.geometry", "边界 GeoJSON", "Boundary GeoJSON"),
    ("area.on_map", "在地图上查看", "View on map"),
    ("area.role", "职责", "Role"),
    ("area.member", "姓名", "Name"),
    ("area.matches", "条", "shown"),
    ("map.title", "网格地图", "Grid map"),
    ("map.hint", "点击网格进入网格页面；输入坐标可查询所属网格。", "Click a grid to open its page; enter a point to find its grid."),
    ("map.locate", "坐标查询网格", "Find the grid for a point"),
    ("map.lat", "纬度", "Latitude"),
    ("map.lon", "经度", "Longitude"),
    ("map.find", "查询", "Find"),
    ("map.show", "显示", "Show"),
    ("map.streets", "街道/乡镇", "Streets"),
    ("map.communities", "社区/村", "Communities"),
    ("map.grids", "基础网格", "Basic grids"),
    ("map.dedicated", "专属网格", "Dedicated grids"),
    ("map.crs", "坐标系：WGS-84（EPSG:4326）", "Coordinates: WGS-84 (EPSG:4326)"),
    ("locate.assigned", "所属网格", "Grid"),
    ("locate.unassigned", "该点不在任何基础网格内（未分配）。", "The point is outside every basic grid (unassigned)."),
    ("locate.ancestry", "上级区划", "Ancestry"),
    ("locate.dedicated", "所在专属网格", "Dedicated grids here"),
    ("locate.none", "无", "None"),
    ("error.title", "出错了", "Something went wrong"),
    ("error.not_found", "找不到该页面或区划。", "No such page or area."),
    ("error.operation", "操作编号", "Operation id"),
    ("error.back", "返回首页", "Back to home"),
    ("docs.title", "接口文档", "API documentation"),
    ("docs.lead", "机器可读的 OpenAPI 文档", "The machine-readable OpenAPI document"),
    ("docs.params", "参数", "Parameters"),
    ("docs.responses", "响应", "Responses"),
    ("docs.schemas", "数据结构", "Schemas"),
    ("docs.required", "必填", "required"),
    ("nav.report", "我要报事", "Report a problem"),
    ("report.title", "我要报事", "Report a problem"),
    ("report.lead", "发现井盖缺失、垃圾堆积、路灯不亮、噪声扰民等问题，请告诉我们。无需登录，联系方式可不填；提交后您会得到一个回执码，可随时查询办理进度。", "Seen a missing manhole cover, piled-up rubbish, a dark street lamp, noise? Tell us. No account needed and contact details are optional; you get a receipt code to follow the case."),
    ("report.category", "问题类型", "Kind of problem"),
    ("report.description", "问题描述", "What is wrong"),
    ("report.location", "位置（可点击按钮获取当前位置，或填写地址）", "Where (use your location, or give an address)"),
    ("report.lat", "纬度", "Latitude"),
    ("report.lon", "经度", "Longitude"),
    ("report.use_location", "使用我的位置", "Use my location"),
    ("report.address", "地址", "Address"),
    ("report.phone", "联系电话（选填，仅工作人员回访使用）", "Phone (optional, only for a call back)"),
    ("report.submit", "提交", "Submit"),
    ("report.bad_phone", "请填写 11 位手机号码，或留空。", "Give an 11-digit mobile number, or leave it empty."),
    ("report.too_many", "提交过于频繁，请稍后再试。", "Too many reports from here; please try again later."),
    ("report.unknown_category", "请选择问题类型。", "Choose the kind of problem."),
    ("report.invalid_description", "请描述问题。", "Describe the problem."),
    ("report.location_required", "请提供位置或地址。", "Give a location or an address."),
    ("receipt.title", "办理进度查询", "Case status"),
    ("receipt.lead", "请保存您的回执码，凭码随时查询办理进度。", "Keep your receipt code: it shows how the case is going."),
    ("receipt.code", "回执码", "Receipt"),
    ("receipt.category", "问题类型", "Kind"),
    ("receipt.state", "当前状态", "Status"),
    ("receipt.reported", "提交时间", "Reported"),
    ("receipt.steps", "办理过程", "Steps"),
    ("action.report", "受理上报", "Report received"),
    ("action.file", "立案", "Filed"),
    ("action.reject", "不予立案", "Not accepted"),
    ("action.merge", "与相同问题合并办理", "Merged with the same problem"),
    ("action.merge_in", "合并相同问题", "A duplicate merged in"),
    ("action.dispatch", "派遣至责任单位", "Sent to the responsible unit"),
    ("action.accept", "责任单位已接收", "Accepted"),
    ("action.return", "重新派遣中", "Being sent again"),
    ("action.request_extension", "申请延期", "Extension requested"),
    ("action.approve_extension", "延期已批准", "Extension approved"),
    ("action.deny_extension", "延期未批准", "Extension refused"),
    ("action.handle", "处置完成", "Handled"),
    ("action.handle_on_spot", "网格员现场处置", "Handled on the spot"),
    ("action.verify", "现场核查通过", "Checked on site"),
    ("action.fail_verification", "核查未通过，返工", "Check failed: redone"),
    ("action.close", "结案", "Closed"),
    ("action.evaluate", "已评价", "Rated"),
    ("action.reopen", "重新办理", "Reopened"),
    ("action.escalate", "上报上级协调", "Escalated"),
    ("action.supervise", "领导督办", "Supervised"),
    ("action.shelve", "挂账办理", "Long-term case"),
    ("action.unshelve", "恢复办理", "Resumed"),
    ("action.void", "作废", "Voided"),
    ("nav.incidents", "事件", "Incidents"),
    ("incidents.title", "事件", "Incidents"),
    ("incidents.state", "状态", "State"),
    ("incidents.category", "类型", "Category"),
    ("incidents.deadline", "时限", "Due"),
    ("incidents.where", "位置", "Where"),
    ("incidents.department", "处置部门", "Department"),
    ("incidents.empty", "没有事件。", "No incidents."),
    ("incidents.actions", "可办理操作", "Actions"),
    ("incidents.no_actions", "您现在没有可办理的操作。", "Nothing for you to do now."),
    ("incidents.note", "说明（选填）", "Note (optional)"),
    ("incidents.extension_hours", "延期工作时数", "Working hours more"),
    ("incidents.extension_asked", "申请延期", "Extension asked"),
    ("incidents.hours", "工作时", "working hours"),
    ("incidents.resident", "居民", "Resident"),
    ("nav.kpis", "考核统计", "KPIs"),
    ("kpi.title", "考核统计", "Key figures"),
    ("kpi.lead", "按上报日期统计：所选日期内上报的事件，及其后来的办理结果。比率的分母是立案数；满意率的分母是已评价数。", "Counted by report date: the incidents reported in the range, and what became of them. Rates are of the filed incidents; the satisfied share is of the rated ones."),
    ("kpi.from", "开始日期", "From"),
    ("kpi.to", "结束日期", "To"),
    ("kpi.by", "分组", "Group by"),
    ("kpi.area", "区划编码", "Area code"),
    ("kpi.show", "统计", "Show"),
    ("kpi.csv", "导出 CSV", "Export CSV"),
    ("kpi.by.street", "按街道", "By street"),
    ("kpi.by.community", "按社区", "By community"),
    ("kpi.by.grid", "按网格", "By grid"),
    ("kpi.by.department", "按部门", "By department"),
    ("kpi.by.person", "按人员", "By person"),
    ("kpi.name", "名称", "Name"),
    ("kpi.total", "合计", "Total"),
    ("kpi.unplaced", "未落入下级区划或未派遣", "Not placed below the area, or not dispatched"),
    ("kpi.reported", "上报数", "Reported"),
    ("kpi.filed", "立案数", "Filed"),
    ("kpi.closed", "结案数", "Closed"),
    ("kpi.closure_rate", "结案率", "Closure rate"),
    ("kpi.on_time_rate", "按期结案率", "On-time closure rate"),
    ("kpi.overdue", "超期数", "Overdue"),
    ("kpi.returns", "退回次数", "Returns"),
    ("kpi.rework_rate", "返工率", "Rework rate"),
    ("kpi.mean_hours", "平均处置时长（小时）", "Mean handling time (h)"),
    ("kpi.mean_rating", "平均满意度", "Mean rating"),
    ("kpi.satisfied_share", "满意率", "Satisfied"),
    ("kpi.verifications", "核查次数", "Checks on site"),
    ("kpi.verifications_on_time", "按时核查", "Checks on time"),
    ("kpi.role", "角色", "Role"),
    ("kpi.empty", "所选范围内没有数据。", "Nothing in this range."),
    ("incidents.stale", "该事件刚被他人处理过，已刷新，请确认后再操作。", "Someone else just changed this incident; check it again before acting."),
    ("menu.password", "修改密码", "Change password"),
    ("menu.logout", "退出登录", "Log out"),
    ("menu.admin", "用户管理", "Users"),
    ("menu.audit", "审计日志", "Audit trail"),
    ("login.title", "登录", "Sign in"),
    ("login.lead", "请使用分配给您的账号登录。", "Sign in with the account you were given."),
    ("login.username", "用户名", "Username"),
    ("login.password", "密码", "Password"),
    ("login.submit", "登录", "Sign in"),
    ("login.invalid", "用户名或密码错误。", "Wrong username or password."),
    ("login.throttled", "失败次数过多，请稍后再试", "Too many failed attempts; try again later"),
    ("password.title", "修改密码", "Change password"),
    ("password.must", "您正在使用临时密码，请先设置新密码。", "You are using a temporary password: set a new one first."),
    ("password.current", "当前密码", "Current password"),
    ("password.new", "新密码", "New password"),
    ("password.confirm", "再次输入新密码", "New password again"),
    ("password.policy", "至少 10 个字符，不能与用户名相同，不能是常见密码。修改后您在其他设备上的登录和接口令牌将失效。", "At least 10 characters, not your username, not a common password. Changing it ends your other sessions and revokes your API tokens."),
    ("password.submit", "保存新密码", "Save the new password"),
    ("password.mismatch", "两次输入的新密码不一致。", "The two new passwords differ."),
    ("password.wrong", "当前密码不正确。", "The current password is wrong."),
    ("password.done", "密码已修改。", "Your password was changed."),
    ("admin.title", "用户管理", "Users"),
    ("admin.create", "新建用户", "New user"),
    ("admin.created", "已创建用户", "Created user"),
    ("admin.saved", "已保存。", "Saved."),
    ("admin.username", "用户名", "Username"),
    ("admin.display_name", "姓名", "Name"),
    ("admin.role", "角色", "Role"),
    ("admin.area", "管辖区划编码", "Area code"),
    ("admin.department", "部门", "Department"),
    ("admin.temp_password", "临时密码", "Temporary password"),
    ("admin.temp_hint", "用户首次登录时必须修改。", "The user must change it at first login."),
    ("admin.status", "状态", "Status"),
    ("admin.active", "正常", "Active"),
    ("admin.disabled", "已停用", "Disabled"),
    ("admin.must_change", "待改密", "Must change password"),
    ("admin.enable", "启用", "Enable"),
    ("admin.disable", "停用", "Disable"),
    ("admin.reset", "重置为临时密码", "Reset to a temporary password"),
    ("admin.update", "保存角色与区划", "Save role and area"),
    ("admin.back", "返回用户列表", "Back to users"),
    ("audit.title", "审计日志", "Audit trail"),
    ("audit.lead", "日志只可追加，每条记录链接上一条的哈希；可用 civicgrid audit verify 校验。时间为北京时间。", "The trail is append-only and each row carries the hash of the one before; civicgrid audit verify checks it. Times are Asia/Shanghai."),
    ("audit.actor", "操作人", "Actor"),
    ("audit.action", "动作", "Action"),
    ("audit.outcome", "结果", "Outcome"),
    ("audit.object", "对象", "Object"),
    ("audit.from", "起始日期", "From"),
    ("audit.to", "截止日期", "To"),
    ("audit.search", "查询", "Search"),
    ("audit.time", "时间", "Time"),
    ("audit.detail", "说明", "Detail"),
    ("audit.client", "来源地址", "Client"),
    ("audit.more", "更早的记录", "Older rows"),
    ("audit.empty", "没有符合条件的记录。", "No rows match."),
    ("audit.any", "全部", "any"),
    ("team.phone", "联系电话", "Phone"),
    ("team.reveal", "查看完整号码", "Show full number"),
    ("team.reason", "查看事由（必填，将记入审计）", "Reason (required, audited)"),
    ("error.password_too_short", "密码至少需要 10 个字符。", "The password needs at least 10 characters."),
    ("error.password_is_username", "密码不能与用户名相同。", "The password must not be the username."),
    ("error.password_common", "该密码过于常见，请换一个。", "That password is too common."),
    ("error.username_taken", "用户名已被使用。", "The username is taken."),
    ("error.invalid_username", "用户名需为 3–32 位小写字母、数字或 . _ -。", "Usernames are 3-32 lower-case letters, digits, '.', '_' or '-'."),
    ("error.unknown_area", "没有该区划编码。", "No area has that code."),
    ("error.invalid_area_code", "区划编码格式不正确。", "Not an area code."),
    ("error.invalid_role", "未知角色。", "Unknown role."),
    ("error.area_out_of_scope", "该区划不在您的管辖范围内。", "That area is outside yours."),
    ("error.department_required", "专业部门处置人员需要填写部门。", "A department handler needs a department."),
    ("error.reason_required", "请填写查看事由。", "Give a reason."),
    ("error.invalid_date", "日期格式应为 YYYY-MM-DD。", "Dates are YYYY-MM-DD."),
    ("error.invalid_limit", "条数应在 1 到 1000 之间。", "The limit is 1 to 1000."),
    ("error.cannot_disable_self", "不能停用自己的账号。", "You cannot disable your own account."),
];

impl Lang {
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let cookie = headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok());
        for c in cookie {
            for part in c.split(';') {
                if part.trim() == "lang=en" {
                    return Lang::En;
                }
            }
        }
        Lang::Zh
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language's cookie value, for the switch.
    pub fn other(self) -> &'static str {
        match self {
            Lang::Zh => "en",
            Lang::En => "zh",
        }
    }

    /// The word for a key; an unknown key shows itself (and a test catches it).
    pub fn t(self, key: &str) -> &'static str {
        match WORDS.iter().find(|(k, _, _)| *k == key) {
            Some((_, zh, en)) => match self {
                Lang::Zh => zh,
                Lang::En => en,
            },
            None => "⟦missing text⟧",
        }
    }

    pub fn level(self, l: Level) -> &'static str {
        match self {
            Lang::Zh => l.name_zh(),
            Lang::En => match l {
                Level::District => "District",
                Level::Street => "Street / township",
                Level::Community => "Community / village",
                Level::Grid => "Basic grid",
                Level::Dedicated => "Dedicated grid",
            },
        }
    }

    pub fn role(self, r: TeamRole) -> &'static str {
        match self {
            Lang::Zh => r.name_zh(),
            Lang::En => match r {
                TeamRole::GridLeader => "Grid leader",
                TeamRole::FullTimeMember => "Full-time grid member",
                TeamRole::PartTimeMember => "Part-time grid member",
                TeamRole::GridPolice => "Grid police officer",
                TeamRole::Volunteer => "Volunteer",
            },
        }
    }

    pub fn kind(self, k: domain::DedicatedKind) -> &'static str {
        match self {
            Lang::Zh => k.name_zh(),
            Lang::En => match k {
                domain::DedicatedKind::School => "School",
                domain::DedicatedKind::Hospital => "Hospital",
                domain::DedicatedKind::Market => "Market",
                domain::DedicatedKind::EnterprisePark => "Enterprise park",
                domain::DedicatedKind::ConstructionSite => "Construction site",
                domain::DedicatedKind::Other => "Other",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_has_both_languages_and_keys_are_unique() {
        let mut keys = std::collections::HashSet::new();
        for (k, zh, en) in WORDS {
            assert!(keys.insert(k), "duplicate key {k}");
            assert!(!zh.is_empty() && !en.is_empty(), "{k} lacks a translation");
        }
        assert_eq!(Lang::Zh.t("nav.map"), "网格地图");
        assert_eq!(Lang::En.t("nav.map"), "Grid map");
    }
}
