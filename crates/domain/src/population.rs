//! The demo district's register (实有人口、房屋、单位): about 270,000 people in 110,000
//! houses and 90,000 households, and a few thousand organisations, spread over the basic
//! grids (denser in urban streets than in towns and townships). `scale` of the district
//! multiplies its grids, and so these counts; `share` thins the population (tests load a
//! small share).
//!
//! Pure and deterministic per seed. A grid's houses, people and organisations depend only
//! on the seed and the grid's place in the district, except for the ID numbers' sequence
//! digits and the organisation codes, which must be unique in the district: they come from
//! an allocator that the grids are generated through in order ([`Population::grids`]).
//!
//! What is plausible here:
//! - households of couples with children, three generations, elderly couples, elderly
//!   people living alone, young couples, single renters (mostly floating population);
//! - ages from a pyramid (children from their mothers' ages, grandparents from the heads'),
//!   names from `names` (children take the father's surname);
//! - ID numbers valid under GB 11643, with the district's or a neighbouring Hunan address
//!   code for registered and resident people and another province's for floating people,
//!   birth date and gender matching the person, all unique;
//! - mobile phones for people of 16 and over (most of them);
//! - addresses road + number + 栋 + 单元 + room in urban grids, village + 组 + number in
//!   rural ones; a point inside the grid; owners and renters linked to their house;
//! - shops, companies, schools and clinics with valid unified social credit codes.

use std::collections::HashMap;

use geo::{BoundingRect, Contains};
use geo_types::{MultiPolygon, Point};

use crate::area::{AreaCode, Level};
use crate::calendar::Day;
use crate::demo::{DemoDistrict, mobile};
use crate::names::{PLACE_ROOTS, SURNAMES, person_name};
use crate::register::citizen_id::id_check_character;
use crate::register::credit_code::{credit_check_character, organisation_check_character};
use crate::register::{PersonTag, PopulationType, Relation};
use crate::rng::{Rng, hash3};

/// People, houses, households and organisations of the base district (scale 1, share 1).
pub const BASE_PEOPLE: usize = 270_000;
pub const BASE_HOUSES: usize = 110_000;
pub const BASE_HOUSEHOLDS: usize = 90_000;

/// A house of the demo register.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoHouse {
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub area_m2: f64,
    /// residential, shop, mixed, office, factory, other (the store's `HouseUse` codes).
    pub house_use: &'static str,
}

/// A person; `house` indexes the grid's houses.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoPerson {
    pub citizen_id: String,
    pub name: String,
    pub female: bool,
    pub birth: Day,
    pub phone: Option<String>,
    pub ethnicity: &'static str,
    pub house: usize,
    pub population: PopulationType,
    pub tags: Vec<PersonTag>,
}

/// A household (户): its house and members (indexes of the grid's persons), the head first.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoHousehold {
    pub house: usize,
    pub members: Vec<(usize, Relation)>,
}

/// An organisation at one of the grid's houses.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOrganisation {
    pub name: String,
    pub credit_code: String,
    pub house: usize,
    pub legal_rep: String,
    pub phone: String,
}

/// How a person holds a house besides living there: `owns` or `rents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoTenure {
    pub person: usize,
    pub house: usize,
    pub owns: bool,
}

/// One grid's share of the register.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPopulation {
    pub grid: AreaCode,
    pub houses: Vec<DemoHouse>,
    pub persons: Vec<DemoPerson>,
    pub households: Vec<DemoHousehold>,
    pub organisations: Vec<DemoOrganisation>,
    pub tenures: Vec<DemoTenure>,
}

/// What one grid gets: its number of houses and whether it is urban.
#[derive(Debug, Clone)]
struct GridPlan {
    code: AreaCode,
    community: String,
    geometry: MultiPolygon<f64>,
    houses: usize,
    urban: bool,
}

/// The plan of the whole register: how many houses each grid has.
#[derive(Debug, Clone)]
pub struct Population {
    seed: u64,
    today: Day,
    grids: Vec<GridPlan>,
}

/// The unique parts: ID sequence digits per (address code, birth day, gender) and the
/// organisation codes.
#[derive(Debug, Default)]
struct Allocator {
    used: HashMap<(u32, i64, bool), u16>,
    orgs: u64,
}

/// Address codes by kind of resident, with weights.
const REGISTERED_CODES: &[(u32, u32)] = &[(430503, 90), (430502, 5), (430511, 5)];
const RESIDENT_CODES: &[(u32, u32)] = &[
    (430521, 3), (430522, 3), (430523, 3), (430524, 2), (430525, 2), (430527, 1), (430528, 1), (430529, 1), (430581, 1), (430102, 1), (430103, 1), (431002, 1),
];
const FLOATING_CODES: &[(u32, u32)] = &[
    (440106, 3), (440304, 3), (450102, 2), (360102, 2), (420106, 2), (510104, 1), (520102, 1), (350102, 1), (330106, 1), (410105, 1), (500103, 1), (441900, 1),
];
const MINORITIES: &[(&str, u32)] = &[("汉族", 960), ("苗族", 12), ("瑶族", 10), ("侗族", 8), ("土家族", 7), ("回族", 3)];

impl Allocator {
    /// A fresh, valid ID number for someone born on `birth`, from one of `codes`.
    fn citizen_id(&mut self, rng: &mut Rng, codes: &[(u32, u32)], birth: Day, female: bool) -> String {
        let first = *rng.weighted(codes);
        let (y, m, d) = birth.ymd();
        // The first code, then the others in turn, when a birthday's 500 sequence numbers run out.
        let order = std::iter::once(first).chain(codes.iter().map(|c| c.0)).chain(REGISTERED_CODES.iter().chain(RESIDENT_CODES).map(|c| c.0));
        for code in order {
            let n = self.used.entry((code, birth.0, female)).or_insert(0);
            if *n >= 500 {
                continue;
            }
            // Spread the numbers as real ones are: start at a place given by the key.
            let start = (hash3(u64::from(code), birth.0 as u64, u64::from(female)) % 500) as u16;
            let k = (start + *n) % 500;
            *n += 1;
            let seq = 2 * k + u16::from(!female);
            let body = format!("{code:06}{y:04}{m:02}{d:02}{seq:03}");
            let check = id_check_character(&body).unwrap_or('0');
            return format!("{body}{check}");
        }
        unreachable!("more people born on one day than the address codes hold")
    }

    /// A fresh unified social credit code: `authority_category` (91 company, 92 individual
    /// business, 12 public institution, 52 private non-enterprise unit), the district and a
    /// fresh organisation code.
    fn credit_code(&mut self, seed: u64, authority_category: &str) -> String {
        self.orgs += 1;
        // Eight characters of the organisation code: a scrambled counter, so codes look apart.
        let n = (self.orgs.wrapping_mul(2_654_435_761) ^ (seed & 0xFFFF)) % 100_000_000;
        let org8 = format!("{n:08}");
        let org9 = format!("{org8}{}", organisation_check_character(&org8).unwrap_or('0'));
        let body = format!("{authority_category}430503{org9}");
        let check = credit_check_character(&body).unwrap_or('0');
        format!("{body}{check}")
    }
}

/// A given name for someone of `surname` (the generator's name with its surname replaced).
fn name_with_surname(rng: &mut Rng, surname: &str, female: bool) -> String {
    let full = person_name(rng, female);
    let given = SURNAMES.iter().map(|s| s.0).filter(|s| full.starts_with(s)).max_by_key(|s| s.len()).map_or(&full[..], |s| &full[s.len()..]);
    format!("{surname}{given}")
}

fn surname_of(name: &str) -> &str {
    SURNAMES.iter().map(|s| s.0).filter(|s| name.starts_with(s)).max_by_key(|s| s.len()).unwrap_or(&name[..3.min(name.len())])
}

impl Population {
    /// Plan the register of `district`: `share` of the base counts (1.0 for the full demo;
    /// tests use a small share), houses apportioned to grids by density (urban streets
    /// about four times a township's).
    pub fn plan(district: &DemoDistrict, seed: u64, share: f64, today: Day) -> Population {
        let names: HashMap<&AreaCode, &str> = district.areas.iter().map(|a| (&a.code, a.name.as_str())).collect();
        let grids: Vec<&crate::AreaRecord> = district.areas.iter().filter(|a| a.level == Level::Grid).collect();
        let scale = grids.len() as f64 / crate::demo::BASE_GRIDS as f64;
        let weight = |code: &AreaCode| -> f64 {
            let street: u32 = code.as_str()[6..9].parse().unwrap_or(0);
            match street {
                0..=99 => 2.6,
                100..=199 => 1.0,
                _ => 0.6,
            }
        };
        let total_w: f64 = grids.iter().map(|g| weight(&g.code)).sum();
        let houses_total = (BASE_HOUSES as f64 * scale * share.max(0.0)).round();
        let mut carry = 0.0;
        let plans = grids
            .iter()
            .map(|g| {
                let exact = houses_total * weight(&g.code) / total_w + carry;
                let n = exact.floor();
                carry = exact - n;
                let community = g.parent.as_ref().and_then(|p| names.get(p)).copied().unwrap_or("").to_string();
                GridPlan { code: g.code.clone(), community, geometry: g.geometry.clone(), houses: n as usize, urban: weight(&g.code) > 2.0 }
            })
            .collect();
        Population { seed, today, grids: plans }
    }

    /// How many basic grids the plan covers.
    pub fn grid_count(&self) -> usize {
        self.grids.len()
    }

    /// Every grid's share of the register, in order (generated one grid at a time, so memory
    /// stays bounded whatever the scale).
    pub fn grids(&self) -> impl Iterator<Item = GridPopulation> + '_ {
        let mut alloc = Allocator::default();
        (0..self.grids.len()).map(move |k| self.grid(k, &mut alloc))
    }

    fn grid(&self, k: usize, alloc: &mut Allocator) -> GridPopulation {
        let plan = &self.grids[k];
        let mut rng = Rng::new(hash3(self.seed, k as u64, 0x9E0_9E0));
        let mut g = GridPopulation { grid: plan.code.clone(), houses: Vec::new(), persons: Vec::new(), households: Vec::new(), organisations: Vec::new(), tenures: Vec::new() };
        let points = PointPicker::new(&plan.geometry);
        self.houses(plan, &mut rng, &points, &mut g);
        // Households: about 90,000 in 110,000 houses; residential and mixed houses only.
        let living: Vec<usize> = (0..g.houses.len()).filter(|&h| matches!(g.houses[h].house_use, "residential" | "mixed")).collect();
        let occupied = BASE_HOUSEHOLDS as f64 / (BASE_HOUSES as f64 * 0.955);
        for h in living {
            if rng.unit() < occupied {
                self.household(&mut rng, alloc, h, plan.urban, &mut g);
            }
        }
        self.organisations(&mut rng, alloc, &mut g);
        g
    }

    fn houses(&self, plan: &GridPlan, rng: &mut Rng, points: &PointPicker, g: &mut GridPopulation) {
        let roads: Vec<String> = (0..3)
            .map(|i| {
                let root = PLACE_ROOTS[(hash3(self.seed, plan.code.as_str().parse::<u64>().unwrap_or(0), i) % PLACE_ROOTS.len() as u64) as usize];
                format!("{root}{}", ["路", "街", "大道"][i as usize])
            })
            .collect();
        let mut number = 1 + rng.below(20);
        while g.houses.len() < plan.houses {
            let road = &roads[rng.below(roads.len())];
            number += 1 + rng.below(6);
            if plan.urban && rng.below(100) < 85 {
                // A residential block: buildings × units × floors × rooms.
                let buildings = 1 + rng.below(6);
                let units = 1 + rng.below(3);
                let floors = 5 + rng.below(14);
                let rooms = 2 + rng.below(3);
                'block: for b in 1..=buildings {
                    let (blat, blon) = points.pick(rng);
                    for u in 1..=units {
                        for f in 1..=floors {
                            for r in 1..=rooms {
                                if g.houses.len() >= plan.houses {
                                    break 'block;
                                }
                                let shop = f == 1 && rng.below(100) < 12;
                                let house_use = if shop { if rng.below(3) == 0 { "mixed" } else { "shop" } } else { "residential" };
                                let area = if shop { rng.range_f64(20.0, 120.0) } else { rng.range_f64(55.0, 140.0) };
                                g.houses.push(DemoHouse {
                                    address: format!("{road}{number}号{b}栋{u}单元{f}{r:02}室"),
                                    lat: blat,
                                    lon: blon,
                                    area_m2: (area * 10.0).round() / 10.0,
                                    house_use,
                                });
                            }
                        }
                    }
                }
            } else {
                // A house of its own (village, or a street-front building).
                let roll = rng.below(1000);
                let house_use = match roll {
                    0..=939 => "residential",
                    940..=964 => "shop",
                    965..=979 => "mixed",
                    980..=989 => "office",
                    990..=995 => "factory",
                    _ => "other",
                };
                let address = if plan.urban {
                    format!("{road}{number}号")
                } else {
                    let village = if plan.community.ends_with('村') { plan.community.clone() } else { format!("{}村", plan.community.trim_end_matches("社区")) };
                    format!("{village}{}组{}号", 1 + rng.below(12), number % 200 + 1)
                };
                let (lat, lon) = points.pick(rng);
                let area = match house_use {
                    "factory" => rng.range_f64(300.0, 3000.0),
                    "office" => rng.range_f64(80.0, 600.0),
                    _ => rng.range_f64(80.0, 260.0),
                };
                g.houses.push(DemoHouse { address, lat: round6(lat), lon: round6(lon), area_m2: (area * 10.0).round() / 10.0, house_use });
            }
        }
    }

    /// One household in house `h`.
    fn household(&self, rng: &mut Rng, alloc: &mut Allocator, h: usize, urban: bool, g: &mut GridPopulation) {
        let today = self.today;
        // (kind, weight): chosen so households average about three people.
        let kind = *rng.weighted(&[
            ("family", 36u32), ("three_generations", 17), ("elderly_couple", 12), ("elderly_alone", 8), ("young_couple", 9), ("single", 11), ("single_parent", 4),
            ("siblings", 3),
        ]);
        let population = match kind {
            "single" => *rng.weighted(&[(PopulationType::Floating, 55u32), (PopulationType::Resident, 20), (PopulationType::Registered, 25)]),
            "young_couple" => *rng.weighted(&[(PopulationType::Floating, 25u32), (PopulationType::Resident, 20), (PopulationType::Registered, 55)]),
            "elderly_alone" | "elderly_couple" => *rng.weighted(&[(PopulationType::Registered, 94u32), (PopulationType::Resident, 6)]),
            _ => *rng.weighted(&[(PopulationType::Registered, 84u32), (PopulationType::Resident, 10), (PopulationType::Floating, 6)]),
        };
        let mut members: Vec<(usize, Relation)> = Vec::new();
        let mut add = |g: &mut GridPopulation, rng: &mut Rng, alloc: &mut Allocator, age: i64, female: bool, surname: Option<&str>, rel: Relation, pop: PopulationType| -> usize {
            let age = age.clamp(0, 99);
            let birth = Day(today.0 - age * 365 - rng.below(365) as i64 - 1);
            // Children of a family share its registration; the very old were registered here.
            let codes = match pop {
                PopulationType::Registered => REGISTERED_CODES,
                PopulationType::Resident => RESIDENT_CODES,
                PopulationType::Floating => FLOATING_CODES,
            };
            let citizen_id = alloc.citizen_id(rng, codes, birth, female);
            let name = match surname {
                Some(s) => name_with_surname(rng, s, female),
                None => person_name(rng, female),
            };
            let phone = (age >= 16 && rng.below(100) < if age >= 75 { 60 } else { 96 }).then(|| mobile(rng).as_str().to_string());
            let mut tags = Vec::new();
            if rng.below(1000) < 15 {
                tags.push(PersonTag::Disability);
            }
            if !female && age >= 35 && rng.below(1000) < 25 {
                tags.push(PersonTag::Veteran);
            }
            let ethnicity = *rng.weighted(MINORITIES);
            g.persons.push(DemoPerson { citizen_id, name, female, birth, phone, ethnicity, house: h, population: pop, tags });
            members.push((g.persons.len() - 1, rel));
            g.persons.len() - 1
        };
        let child_rel = |female: bool| if female { Relation::Daughter } else { Relation::Son };
        let adult_age = |rng: &mut Rng, lo: i64, hi: i64| lo + rng.below((hi - lo + 1) as usize) as i64;
        match kind {
            "family" | "three_generations" | "single_parent" => {
                let head_age = adult_age(rng, 27, 55);
                let head_female = kind == "single_parent" && rng.below(3) > 0 || kind != "single_parent" && rng.below(10) < 2;
                let head = add(g, rng, alloc, head_age, head_female, None, Relation::Head, population);
                let head_surname = surname_of(&g.persons[head].name).to_string();
                let mother_age = if kind != "single_parent" {
                    let spouse_age = (head_age + rng.below(7) as i64 - 3).max(22);
                    add(g, rng, alloc, spouse_age, !head_female, None, Relation::Spouse, population);
                    if head_female { head_age } else { spouse_age }
                } else {
                    head_age
                };
                // The children's surname is the father's.
                let father_surname = if head_female && kind != "single_parent" { surname_of(&g.persons[head + 1].name).to_string() } else { head_surname.clone() };
                let children = *rng.weighted(&[(1usize, 50u32), (2, 40), (3, 10)]);
                let mut eldest = mother_age - 22 - rng.below(8) as i64;
                for _ in 0..children {
                    if eldest < 0 {
                        break;
                    }
                    let female = rng.below(2) == 0;
                    let id = add(g, rng, alloc, eldest, female, Some(&father_surname), child_rel(female), population);
                    if eldest < 16 && population == PopulationType::Registered && rng.below(1000) < 20 {
                        g.persons[id].tags.push(PersonTag::LeftBehindChild);
                    }
                    eldest -= 2 + rng.below(6) as i64;
                }
                if kind == "three_generations" {
                    let grand_age = head_age + 24 + rng.below(8) as i64;
                    let both = rng.below(100) < 55;
                    let grandma = rng.below(2) == 0 || both;
                    if both || !grandma {
                        add(g, rng, alloc, grand_age.min(96), false, Some(&head_surname), Relation::Father, population);
                    }
                    if grandma {
                        let a = (grand_age - rng.below(4) as i64).min(96);
                        add(g, rng, alloc, a, true, None, Relation::Mother, population);
                    }
                }
            }
            "elderly_couple" => {
                let age = adult_age(rng, 60, 88);
                add(g, rng, alloc, age, false, None, Relation::Head, population);
                let a = age - rng.below(5) as i64;
                add(g, rng, alloc, a, true, None, Relation::Spouse, population);
            }
            "elderly_alone" => {
                let age = adult_age(rng, 65, 95);
                let female = rng.below(100) < 65;
                let id = add(g, rng, alloc, age, female, None, Relation::Head, population);
                g.persons[id].tags.push(PersonTag::ElderlyAlone);
            }
            "young_couple" => {
                let age = adult_age(rng, 22, 34);
                let female = rng.below(10) < 2;
                add(g, rng, alloc, age, female, None, Relation::Head, population);
                let a = age + rng.below(5) as i64 - 2;
                add(g, rng, alloc, a, !female, None, Relation::Spouse, population);
            }
            "siblings" => {
                let age = adult_age(rng, 18, 30);
                let female = rng.below(2) == 0;
                let head = add(g, rng, alloc, age, female, None, Relation::Head, population);
                let surname = surname_of(&g.persons[head].name).to_string();
                let (a, female) = (age - 1 - rng.below(5) as i64, rng.below(2) == 0);
                add(g, rng, alloc, a, female, Some(&surname), Relation::Sibling, population);
            }
            _ => {
                let age = adult_age(rng, 18, 45);
                let female = rng.below(100) < 45;
                add(g, rng, alloc, age, female, None, Relation::Head, population);
            }
        }
        let head = members[0].0;
        if rng.below(1000) < 25 {
            g.persons[head].tags.push(PersonTag::LowIncome);
        }
        // Renters: single people, young couples and floating families mostly rent.
        let rents = match (kind, population) {
            (_, PopulationType::Floating) => rng.below(100) < 90,
            ("single" | "young_couple" | "siblings", _) => rng.below(100) < 60,
            _ => rng.below(100) < if urban { 15 } else { 5 },
        };
        g.tenures.push(DemoTenure { person: head, house: h, owns: !rents });
        g.households.push(DemoHousehold { house: h, members });
    }

    /// Shops in shop houses, companies in offices and factories, some schools and clinics.
    fn organisations(&self, rng: &mut Rng, alloc: &mut Allocator, g: &mut GridPopulation) {
        const SHOPS: &[&str] = &["便利店", "超市", "餐馆", "理发店", "五金店", "药店", "水果店", "早餐店", "手机店", "服装店", "粉店", "烟酒店"];
        const TRADES: &[&str] = &["商贸", "建材", "物流", "科技", "食品", "机械", "家政", "装饰", "文化传媒", "农业开发"];
        for h in 0..g.houses.len() {
            let house_use = g.houses[h].house_use;
            let road = PLACE_ROOTS[rng.below(PLACE_ROOTS.len())];
            let (name, ac) = match house_use {
                "shop" => (format!("{}{}", road, rng.pick(SHOPS)), "92"),
                "mixed" if rng.below(2) == 0 => (format!("{}{}", road, rng.pick(SHOPS)), "92"),
                "office" => (format!("邵阳市{}{}有限公司", road, rng.pick(TRADES)), "91"),
                "factory" => (format!("邵阳{}{}厂", road, ["制衣", "五金", "纸品", "竹木", "食品"][rng.below(5)]), "91"),
                "other" if rng.below(100) < 45 => {
                    if rng.below(100) < 40 {
                        (format!("{road}{}", ["小学", "幼儿园", "中学"][rng.below(3)]), "12")
                    } else {
                        (format!("{road}{}", ["诊所", "卫生服务站", "口腔诊所"][rng.below(3)]), "52")
                    }
                }
                _ => continue,
            };
            let female = rng.below(3) == 0;
            let legal_rep = person_name(rng, female);
            let credit_code = alloc.credit_code(self.seed, ac);
            g.organisations.push(DemoOrganisation { name, credit_code, house: h, legal_rep, phone: mobile(rng).as_str().to_string() });
        }
    }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Points inside a grid's polygon, by rejection in its bounding box.
struct PointPicker<'a> {
    geometry: &'a MultiPolygon<f64>,
    bbox: Option<geo_types::Rect<f64>>,
}

impl<'a> PointPicker<'a> {
    fn new(geometry: &'a MultiPolygon<f64>) -> Self {
        PointPicker { geometry, bbox: geometry.bounding_rect() }
    }

    /// (lat, lon) inside the grid (its bounding box's centre if 64 tries all miss).
    fn pick(&self, rng: &mut Rng) -> (f64, f64) {
        let Some(b) = self.bbox else { return (crate::demo::CENTRE_LAT, crate::demo::CENTRE_LON) };
        // Inset a little, so a rounded point stays inside.
        for _ in 0..64 {
            let lon = rng.range_f64(b.min().x, b.max().x);
            let lat = rng.range_f64(b.min().y, b.max().y);
            let p = Point::new(round6(lon), round6(lat));
            if self.geometry.contains(&p) {
                return (p.y(), p.x());
            }
        }
        let c = b.center();
        (c.y, c.x)
    }
}
