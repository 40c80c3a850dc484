//! Plausible Chinese names for the demo district: people, streets, communities, places.
//! Later issues draw residents from the same lists.

use crate::rng::Rng;

/// Common surnames with rough relative frequencies (per mille of the population).
pub const SURNAMES: &[(&str, u32)] = &[
    ("王", 72), ("李", 72), ("张", 68), ("刘", 53), ("陈", 45), ("杨", 31), ("黄", 22),
    ("赵", 20), ("吴", 20), ("周", 19), ("徐", 15), ("孙", 15), ("马", 12), ("朱", 12),
    ("胡", 11), ("郭", 11), ("何", 10), ("林", 9), ("罗", 9), ("高", 9), ("郑", 8),
    ("梁", 8), ("谢", 8), ("宋", 7), ("唐", 7), ("许", 7), ("韩", 6), ("邓", 6),
    ("冯", 6), ("曹", 6), ("彭", 6), ("曾", 6), ("肖", 6), ("田", 5), ("董", 5),
    ("潘", 5), ("袁", 5), ("蔡", 5), ("蒋", 5), ("余", 5), ("于", 5), ("杜", 4),
    ("叶", 4), ("程", 4), ("魏", 4), ("苏", 4), ("吕", 4), ("丁", 4), ("任", 4),
    ("卢", 4), ("姚", 4), ("沈", 4), ("钟", 3), ("姜", 3), ("崔", 3), ("谭", 3),
    ("陆", 3), ("范", 3), ("汪", 3), ("廖", 3), ("石", 3), ("金", 3), ("韦", 3),
    ("贾", 3), ("夏", 3), ("付", 3), ("方", 3), ("邹", 3), ("熊", 2), ("白", 2),
    ("孟", 2), ("秦", 2), ("邱", 2), ("侯", 2), ("江", 2), ("尹", 2), ("薛", 2),
    ("阎", 2), ("段", 2), ("雷", 2), ("龙", 2), ("黎", 2), ("史", 2), ("陶", 2),
    ("贺", 2), ("毛", 2), ("郝", 2), ("顾", 2), ("龚", 2), ("邵", 2), ("万", 2),
    ("覃", 1), ("武", 1), ("钱", 1), ("戴", 1), ("严", 1), ("莫", 1), ("孔", 1),
    ("向", 1), ("常", 1), ("欧阳", 1), ("司马", 1),
];

const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华",
    "飞", "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "建",
    "国", "志", "文", "海", "峰", "亮", "成", "新", "振", "东", "德", "光", "福", "生", "荣",
];
const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "慧", "颖", "琳",
    "晶", "欣", "倩", "洁", "梅", "兰", "红", "萍", "英", "华", "秀", "云", "莉", "佳", "悦",
    "琴", "凤", "桂", "珍", "玉", "春", "月", "婉", "怡", "思", "雨", "晓", "薇", "瑶", "丹",
];

/// A plausible full name; about half of given names have two characters.
pub fn person_name(rng: &mut Rng, female: bool) -> String {
    let surname = rng.weighted(SURNAMES);
    let pool = if female { GIVEN_FEMALE } else { GIVEN_MALE };
    let mut name = String::from(*surname);
    let given: &&str = rng.pick(pool);
    name.push_str(given);
    if rng.below(100) < 55 {
        let more: &&str = rng.pick(pool);
        name.push_str(more);
    }
    name
}

/// A plausible full name of either sex.
pub fn any_person_name(rng: &mut Rng) -> String {
    let female = rng.below(2) == 0;
    person_name(rng, female)
}

/// Roots for place names: streets, communities and villages.
pub const PLACE_ROOTS: &[&str] = &[
    "城南", "城西", "城北", "城东", "红旗", "学院", "中心", "百春", "火车站", "雨溪", "檀江",
    "蔡锷", "罗市", "板桥", "新渡", "翻身", "双拥", "敏州", "渡头", "桥头", "太平", "回龙",
    "雪峰", "宝庆", "资江", "邵水", "龙须", "塘田", "枫江", "合心", "黄荆", "清风", "桃花",
    "荷花", "梅子", "竹山", "松坡", "石门", "白鹭", "金星", "银湖", "长春", "光明", "建设",
    "和平", "团结", "向阳", "东风", "红星", "五一", "胜利", "幸福", "新华", "人民", "兴隆",
    "永安", "富民", "民主", "友谊", "西湖", "北塔", "南岳", "东塔", "西园", "湘中", "田心",
    "洪桥", "大坪", "茶山", "柳山", "栗山", "枫林", "杉木", "樟树", "柏树", "青龙", "白马",
    "凤凰", "麒麟", "双凤", "高峰", "大洲", "小溪", "清水", "石塘", "马鞍", "牛角", "龙泉",
];

/// A place name not used before in `used`, from the roots; once they run out, a root with
/// a number (红旗二, 红旗三 …, then 红旗100 …), so any number of names can be made.
pub fn unique_place(rng: &mut Rng, used: &mut std::collections::HashSet<String>) -> String {
    for _ in 0..16 {
        let root = rng.pick(PLACE_ROOTS);
        if used.insert((*root).to_string()) {
            return (*root).to_string();
        }
    }
    let root = rng.pick(PLACE_ROOTS);
    for k in 2.. {
        let candidate = if k < 100 { format!("{root}{}", chinese_ordinal(k)) } else { format!("{root}{k}") };
        if used.insert(candidate.clone()) {
            return candidate;
        }
    }
    unreachable!("the numbers never run out")
}

/// 1 → 一, 12 → 十二, 35 → 三十五 (for 1..=99).
pub fn chinese_ordinal(n: usize) -> String {
    const D: [&str; 10] = ["", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match n {
        0 => "零".into(),
        1..=9 => D[n].into(),
        10..=19 => format!("十{}", D[n % 10]),
        _ => format!("{}十{}", D[(n / 10) % 10], D[n % 10]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_names_never_run_out() {
        let mut rng = Rng::new(1);
        let mut used = std::collections::HashSet::new();
        for _ in 0..20_000 {
            unique_place(&mut rng, &mut used);
        }
        assert_eq!(used.len(), 20_000);
        assert_eq!(chinese_ordinal(35), "三十五");
        assert_eq!(chinese_ordinal(10), "十");
    }
}
